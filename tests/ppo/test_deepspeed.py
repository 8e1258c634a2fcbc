"""The PPO trainer under accelerate's DeepSpeed plugin, on CPU: two processes launched with
deploy/accelerate/zero2.yaml (and zero3.yaml), DeepSpeed's CPU accelerator over gloo.

What it proves: accelerate refuses the trainer's old call, `prepare(policy, critic, optimizer)`,
with its "multiple models when using DeepSpeed" AssertionError; the trainer's one
`PolicyAndValue` passes it, and `deepspeed.initialize` receives that one module with the
trainer's optimizer, micro-batch and `ppo.max_grad_norm` as `gradient_clipping`. The engine is
then built and two PPO updates run through it; weights move and stay equal on both ranks.

Where it stops: CPU, gloo and fp32 only. NCCL, bf16 under DeepSpeed, CPU/NVMe offload and the
round snapshots and evaluation of `rounds.py` under ZeRO-3 (which hold partitioned weights)
need GPUs and are not run here (docs/deployment.md). Skipped where `deepspeed` is not installed
(`pip install -e .[deepspeed]`); test_policy_and_value.py runs everywhere.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from alignment_stages.launcher import free_port
from tests.conftest import REPO_ROOT

pytest.importorskip("deepspeed")

CASES = {"zero2-gae": ("zero2.yaml", "gae"), "zero2-rloo": ("zero2.yaml", "rloo"),
         "zero3-gae": ("zero3.yaml", "gae")}  # fmt: skip


def _launch(config: str, estimator: str, out_dir) -> list[dict]:
    path = os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1"}
    command = [
        sys.executable, "-m", "accelerate.commands.launch",
        "--config_file", str(REPO_ROOT / "deploy" / "accelerate" / config),
        "--num_processes", "2", "--main_process_port", str(free_port()),
        str(REPO_ROOT / "tests" / "ppo" / "deepspeed_worker.py"), str(out_dir), estimator,
    ]  # fmt: skip
    completed = subprocess.run(
        command, env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=600
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return [json.loads((out_dir / f"rank{r}.json").read_text()) for r in (0, 1)]


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_trainer_prepares_and_trains_under_deepspeed(case, tmp_path):
    config, estimator = CASES[case]
    ranks = _launch(config, estimator, tmp_path)
    assert [r["world"] for r in ranks] == [2, 2] and all(r["deepspeed"] for r in ranks)
    for rank in ranks:
        assert "multiple models when using DeepSpeed" in rank["refused"]
        assert rank["engine"] == "DeepSpeedEngine"
        (initialized,) = rank["initialized"]  # one engine for policy and critic together
        assert initialized["model"] == "PolicyAndValue"
        children = ["policy", "value_model"] if estimator == "gae" else ["policy"]
        assert initialized["submodules"] == children
        assert initialized["optimizer"] == "Adam"
        assert initialized["zero_stage"] == (3 if config == "zero3.yaml" else 2)
        assert initialized["train_micro_batch_size_per_gpu"] == 2  # 4 rollouts / 2 minibatches
        assert initialized["gradient_clipping"] == 1.0  # ppo.max_grad_norm
        assert rank["checksum"] != rank["checksum_before"]  # the updates changed the policy
    # DeepSpeed reduced the gradients: both ranks hold the same weights after two updates, and
    # the statistics are reduced over both (rank 0's scores average 0.5, rank 1's 1.5).
    assert abs(ranks[0]["checksum"] - ranks[1]["checksum"]) < 1e-6
    for step in range(2):
        assert ranks[0]["stats"][step] == ranks[1]["stats"][step]
        assert ranks[0]["stats"][step]["ppo/reward"] == 1.0
        # One joint norm, DeepSpeed's; the separate policy and critic norms are not available.
        assert "ppo/grad_norm" in ranks[0]["stats"][step]
        assert "ppo/policy_grad_norm" not in ranks[0]["stats"][step]
