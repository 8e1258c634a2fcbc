"""Round checkpoints of a PPO run, so that a killed run resumes from its last completed round.

At the end of every healthy round the run writes `round_NNN/` under its checkpoint folder:

- `policy.safetensors`: the policy's trained parameters (the LoRA adapter, or every weight),
  and `critic.safetensors`, the critic's, by name;
- `optimizer.safetensors` + `optimizer.json`: Adam's moments and step counts, and its param
  groups. Resetting them on resume is the classic failure: Adam restarts with zero moments and
  bias correction from step 1, and the first updates after a resume are far larger than the ones
  they replace;
- `rng.safetensors` + `state.json`: torch's, Python's and NumPy's RNG states, the prompt
  cycle's position, the KL controller's β, the history rows and evaluation labels so far, and
  the validated parameters of the run.

Once round N is written, the critic and optimiser files of the rounds before it are removed: a
resume reads them only from the last round, and on SmolLM2 they are 1.6 GB a round (a 134M
critic and Adam's two moments), against 4 MB for the policy's LoRA adapter, which every round
keeps to rebuild its policy.

`inputs.json` beside the rounds records what the run loaded: the version of every versioned
input (base_policy, reward_model, the prompt tables, ...) and its other parameter blocks. A
resume on other versions would train the later rounds on another base, and mix two runs in one
history; it is refused, naming each input and both versions (`check_inputs`).

Tensors are stored as safetensors and everything else as JSON: nothing here is unpickled. A
round folder is written under a hidden staging name and renamed into place when complete, so a
process killed mid-write leaves no round that a resume would read (`alignment_stages.staging`).

`PPOTrainer` and `RoundRecorder` own the state; this module only stores and restores it.
"""

from __future__ import annotations

import json
import logging
import random
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from alignment_stages.staging import is_abandoned, staging_name

logger = logging.getLogger(__name__)

ROUND_PREFIX = "round_"
INPUTS_FILE = "inputs.json"
# Read on resume from the last completed round only.
LAST_ROUND_ONLY = ("critic.safetensors", "optimizer.safetensors", "optimizer.json")


class ResumeMismatchError(ValueError):
    """A checkpoint written with other parameters than the run that would resume it."""


def flatten(mapping: Any, prefix: str = "") -> dict[str, Any]:
    """{"a": {"b": 1}} → {"a.b": 1}; lists stay values."""
    if not isinstance(mapping, dict):
        return {prefix: mapping}
    flat: dict[str, Any] = {}
    for key, value in mapping.items():
        flat.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return flat


def differing_keys(saved: dict[str, Any], current: dict[str, Any]) -> list[str]:
    saved_flat, current_flat = flatten(saved), flatten(current)
    keys = set(saved_flat) | set(current_flat)
    return sorted(k for k in keys if saved_flat.get(k, "<unset>") != current_flat.get(k, "<unset>"))


def rng_state() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The global RNGs seed_everything seeds: torch (CPU and CUDA), Python and NumPy."""
    tensors = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        for index, state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"cuda.{index}"] = state
    numpy_state = np.random.get_state()
    tensors["numpy.keys"] = torch.from_numpy(numpy_state[1].astype(np.int64))
    version, internal, gauss = random.getstate()
    return tensors, {
        "python": [version, list(internal), gauss],
        "numpy": [numpy_state[0], int(numpy_state[2]), int(numpy_state[3]), float(numpy_state[4])],
    }


def restore_rng_state(tensors: dict[str, torch.Tensor], values: dict[str, Any]) -> None:
    torch.set_rng_state(tensors["torch"])
    cuda = sorted(k for k in tensors if k.startswith("cuda."))
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([tensors[k] for k in cuda])
    name, position, has_gauss, gauss = values["numpy"]
    keys = tensors["numpy.keys"].numpy().astype(np.uint32)
    np.random.set_state((name, keys, position, has_gauss, gauss))
    version, internal, gauss = values["python"]
    random.setstate((version, tuple(internal), gauss))


def optimizer_tensors(state: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """torch's optimizer state_dict as safetensors-ready tensors and JSON-ready structure."""
    tensors, scalars = {}, {}
    for index, values in state["state"].items():
        for name, value in values.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{index}.{name}"] = value.detach().cpu().contiguous()
            else:
                scalars[f"{index}.{name}"] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def optimizer_state(tensors: dict[str, torch.Tensor], structure: dict[str, Any]) -> dict:
    state: dict[int, dict[str, Any]] = {}
    for key, value in [*tensors.items(), *structure["scalars"].items()]:
        index, name = key.split(".", 1)
        state.setdefault(int(index), {})[name] = value
    return {"state": state, "param_groups": structure["param_groups"]}


def _plain(value: Any) -> Any:
    """NumPy scalars in history rows, as the Python numbers JSON writes."""
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


@dataclass
class RoundCheckpoint:
    """One completed round, as read back from disk."""

    round_index: int
    weights: dict[str, torch.Tensor]
    optimizer: dict[str, Any]
    rng_tensors: dict[str, torch.Tensor]
    state: dict[str, Any]


class RoundCheckpoints:
    """The checkpoint folder of one run: `round_NNN/` per completed round."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)

    def __repr__(self) -> str:
        return f"RoundCheckpoints({str(self.folder)!r})"

    def completed_rounds(self) -> list[int]:
        if not self.folder.is_dir():
            return []
        return sorted(
            int(p.name[len(ROUND_PREFIX) :])
            for p in self.folder.iterdir()
            if p.is_dir()
            and p.name.startswith(ROUND_PREFIX)
            and p.name[len(ROUND_PREFIX) :].isdigit()
        )

    def check_parameters(self, parameters: dict[str, Any]) -> None:
        """Refuse to resume a run whose parameters differ from the checkpointed ones."""
        rounds = self.completed_rounds()
        if not rounds:
            return
        saved = json.loads((self._round(rounds[-1]) / "state.json").read_text())["parameters"]
        current = json.loads(json.dumps(parameters))  # the same JSON normal form as the saved
        if saved != current:
            keys = differing_keys(saved, current)
            raise ResumeMismatchError(
                f"{self.folder} holds round {rounds[-1]} of a run with other parameters: "
                f"{', '.join(keys)} differ. Resume with the parameters it was started with, or "
                "start a new run (another ALIGNMENT_STAGES_RUN_VERSION)."
            )

    def check_inputs(self, versions: dict[str, str], parameters: dict[str, Any]) -> None:
        """With a completed round, refuse inputs other than those the run started on; without
        one, record these (a run killed before its first round may start on anything)."""
        rounds, path = self.completed_rounds(), self.folder / INPUTS_FILE
        current = json.loads(json.dumps({"versions": versions, "parameters": parameters}))
        if rounds and not path.is_file():
            logger.warning(
                "%s was written before input versions were recorded: its inputs are not "
                "checked on this resume", self.folder,
            )  # fmt: skip
            return
        if rounds:
            self._refuse_other_inputs(rounds[-1], json.loads(path.read_text()), current)
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        staging = self.folder / staging_name(INPUTS_FILE)
        staging.write_text(json.dumps(current, indent=2, sort_keys=True))
        staging.rename(path)

    def _refuse_other_inputs(self, last_round: int, saved: dict, current: dict) -> None:
        was, now = saved["versions"], current["versions"]
        problems = [
            f"{name} was {was.get(name, 'not loaded')} when round {last_round} was written and "
            f"is {now.get(name, 'not loaded')} now"
            for name in sorted(set(was) | set(now))
            if was.get(name) != now.get(name)
        ]
        keys = differing_keys(saved["parameters"], current["parameters"])
        if keys:
            problems.append(f"parameters {', '.join(keys)} differ")
        if not problems:
            return
        pins = ",".join(f"{name}:{version}" for name, version in sorted(was.items())
                        if now.get(name) != version)  # fmt: skip
        raise ResumeMismatchError(
            f"{self.folder} holds round {last_round} of a run with other inputs: "
            f"{'; '.join(problems)}. Resume on the inputs it started with"
            + (f" (--load-versions {pins})" if pins else "")
            + ", or start a new run (another ALIGNMENT_STAGES_RUN_VERSION)."
        )

    def save(
        self,
        round_index: int,
        weights: dict[str, torch.Tensor],
        optimizer: dict[str, Any],
        state: dict[str, Any],
    ) -> Path:
        """Write round `round_index` atomically; the folder appears only once complete."""
        self.folder.mkdir(parents=True, exist_ok=True)
        for entry in self.folder.iterdir():
            if entry.name.startswith(f".{ROUND_PREFIX}") and is_abandoned(entry.name):
                shutil.rmtree(entry, ignore_errors=True)
        target = self._round(round_index)
        staging = self.folder / staging_name(target.name)
        staging.mkdir()
        try:
            for part in ("policy", "critic"):
                tensors = {
                    k: v.detach().cpu().contiguous()
                    for k, v in weights.items()
                    if k.startswith(f"{part}.")
                }
                save_file(tensors, str(staging / f"{part}.safetensors"))
            optimizer_values, optimizer_structure = optimizer_tensors(optimizer)
            save_file(optimizer_values, str(staging / "optimizer.safetensors"))
            (staging / "optimizer.json").write_text(json.dumps(optimizer_structure))
            rng_tensors, rng_values = rng_state()
            save_file(rng_tensors, str(staging / "rng.safetensors"))
            (staging / "state.json").write_text(
                json.dumps({**state, "rng": rng_values}, default=_plain)
            )
            if target.exists():  # a rerun of this round replaces it whole
                shutil.rmtree(target)
            staging.rename(target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        for earlier in self.completed_rounds():
            if earlier < round_index:
                for name in LAST_ROUND_ONLY:
                    (self._round(earlier) / name).unlink(missing_ok=True)
        logger.info("ppo/checkpoint round=%d %s", round_index, target)
        return target

    def load_policy(self, round_index: int) -> dict[str, torch.Tensor]:
        return load_file(str(self._round(round_index) / "policy.safetensors"))

    def load(self, round_index: int) -> RoundCheckpoint:
        folder = self._round(round_index)
        state = json.loads((folder / "state.json").read_text())
        return RoundCheckpoint(
            round_index=round_index,
            weights={
                **load_file(str(folder / "policy.safetensors")),
                **load_file(str(folder / "critic.safetensors")),
            },
            optimizer=optimizer_state(
                load_file(str(folder / "optimizer.safetensors")),
                json.loads((folder / "optimizer.json").read_text()),
            ),
            rng_tensors=load_file(str(folder / "rng.safetensors")),
            state=state,
        )

    def _round(self, round_index: int) -> Path:
        return self.folder / f"{ROUND_PREFIX}{round_index:03d}"
