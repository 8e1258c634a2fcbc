#!/usr/bin/env bash
# Create (or bring up to date) benchmarks/.venv-trl112 with TRL 1.12.0 for the PPO baseline,
# then print the venv's python. Idempotent: a venv whose installed requirements match
# requirements.txt is left as it is. With TRL112_PYTHON set (an interpreter already holding these
# requirements, e.g. on a machine without network), that is printed instead and nothing is built.
#
#     bash benchmarks/trl112/setup_venv.sh
set -euo pipefail

if [[ -n "${TRL112_PYTHON:-}" ]]; then
    echo "$TRL112_PYTHON"
    exit 0
fi

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$(dirname "$here")/.venv-trl112"
requirements="$here/requirements.txt"
stamp="$venv/.requirements.sha256"
python="${PYTHON:-python3}"

want="$(sha256sum "$requirements" | cut -d' ' -f1)"
if [[ -x "$venv/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    echo "$venv/bin/python"
    exit 0
fi

if [[ ! -x "$venv/bin/python" ]]; then
    "$python" -m venv "$venv" >&2
fi
"$venv/bin/python" -m pip install --quiet --upgrade pip >&2
"$venv/bin/python" -m pip install --quiet -r "$requirements" >&2
TRL_EXPERIMENTAL_SILENCE=1 "$venv/bin/python" -c "import torch, trl; from trl.experimental.ppo import PPOTrainer" >&2
echo "$want" >"$stamp"
echo "$venv/bin/python"
