"""Run a training stage in this process, or across processes and GPUs with `accelerate launch`.

A Kedro node runs in one Python process. Multi-GPU data parallelism and DeepSpeed need one
process per device, started by a launcher. A node hands `run_stage` the stage function itself.
With `launcher.kind: accelerate` it writes the inputs to a scratch directory, starts

    accelerate launch [--config_file F] [--num_processes N] [args...] \
        -m alignment_stages.launcher MODULE:QUALNAME DIR

and loads what the main process wrote back. Every process imports the same plain stage function
by the module and qualified name `run_stage` read off it, so results differ only by what data
parallelism changes. A function a worker cannot import by name (a lambda, a nested function, a
bound method, one defined in `__main__`) is refused before anything runs, inline too, so a
stage that runs inline also runs launched. A failed launch raises with the end of the workers'
log and returns nothing, so Kedro saves nothing.

    python -m alignment_stages.launcher MODULE:QUALNAME DIR   # the worker side; not for direct use
"""

from __future__ import annotations

import gc
import importlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from pydantic import BaseModel

from alignment_stages.models.artifacts import (
    ModelArtifact,
    load_artifact,
    save_artifact,
    save_artifacts,
)
from alignment_stages.parameters import LauncherParams
from alignment_stages.tracking import launch_environment, parent_run

Stage = Callable[..., dict[str, Any]]  # keyword inputs in, a dict of named outputs out
LOG_TAIL_CHARS = 4000


class LaunchError(RuntimeError):
    """The launched stage failed; nothing it produced is returned."""


def stage_address(stage: Stage) -> str:
    """`module:qualname`, by which a launched worker imports `stage`; ValueError if that name
    does not lead back to this very function."""
    module, qualname = getattr(stage, "__module__", None), getattr(stage, "__qualname__", None)
    if not module or not qualname or module == "__main__" or "<" in qualname:
        raise ValueError(
            f"{stage!r} cannot be launched: a worker process imports the stage by module and "
            "name, so it must be a function defined at the top level of an importable module "
            "(not a lambda, a nested function, a partial or code in __main__)"
        )
    address = f"{module}:{qualname}"
    found = _import_stage(address)
    if found is not stage:
        raise ValueError(
            f"{stage!r} cannot be launched: a worker importing {address} would get {found!r}"
        )
    return address


def _import_stage(address: str) -> Stage:
    module, qualname = address.split(":")
    found: Any = importlib.import_module(module)
    for part in qualname.split("."):
        found = getattr(found, part, None)
    if not callable(found):
        raise ValueError(f"{address} is not an importable stage function")
    return found


def run_stage(stage: Stage, inputs: dict[str, Any], launcher: LauncherParams) -> dict[str, Any]:
    """Run `stage(**inputs)` as `launcher` says and return its outputs."""
    stage_address(stage)  # refused here, inline too, if a worker could not import it
    if launcher.kind == "inline":
        return stage(**inputs)
    return _launch(stage, inputs, launcher)


def accelerate_command(stage: Stage, workdir: Path, launcher: LauncherParams) -> list[str]:
    command = [sys.executable, "-m", "accelerate.commands.launch"]
    settings: dict[str, Any] = {}
    if launcher.config_file:
        config = Path(launcher.config_file)
        if not config.is_file():
            raise FileNotFoundError(
                f"launcher.config_file {config} does not exist; write one with `accelerate config`"
            )
        settings = yaml.safe_load(config.read_text()) or {}
        command += ["--config_file", str(config)]
    if launcher.num_processes:
        command += ["--num_processes", str(launcher.num_processes)]
    # One machine and no port chosen: take a free one. Every launch would otherwise rendezvous on
    # 29500, so two training tasks on one worker (or a launch right after another) collide.
    chosen = "--main_process_port" in launcher.extra_args or settings.get("main_process_port")
    if not chosen and int(settings.get("num_machines") or 1) == 1:
        command += ["--main_process_port", str(free_port())]
    worker = ["-m", "alignment_stages.launcher", stage_address(stage), str(workdir)]
    return [*command, *launcher.extra_args, *worker]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _launch(stage: Stage, inputs: dict[str, Any], launcher: LauncherParams) -> dict[str, Any]:
    name = stage.__qualname__
    workdir = Path(tempfile.mkdtemp(prefix=f"alignment_stages_{name}_"))
    try:
        command = accelerate_command(stage, workdir, launcher)
        write_values(inputs, workdir / "inputs")
        log = workdir / "launch.log"
        with log.open("w") as handle:
            try:
                # The launched main process logs into this process's MLflow run, if one is active.
                environment = {**os.environ, "PYTHONUNBUFFERED": "1", **launch_environment()}
                completed = subprocess.run(
                    command, stdout=handle, stderr=subprocess.STDOUT,
                    timeout=launcher.timeout_seconds, env=environment,
                )  # fmt: skip
            except subprocess.TimeoutExpired as error:
                raise LaunchError(
                    f"{name}: accelerate launch exceeded timeout_seconds="
                    f"{launcher.timeout_seconds}; log tail:\n{_tail(log)}"
                ) from error
        if completed.returncode != 0 or not (workdir / "outputs" / "MANIFEST.json").is_file():
            raise LaunchError(
                f"{name}: `{' '.join(command)}` failed with exit code {completed.returncode}; "
                f"nothing was saved. Log tail:\n{_tail(log)}"
            )
        return read_values(workdir / "outputs")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-LOG_TAIL_CHARS:]


# --- values across the process boundary: the same safe formats as the catalog ------------------


def write_values(values: dict[str, Any], directory: Path) -> None:
    """Models as safetensors artifacts, tables as parquet, parameters and metrics as JSON."""
    directory.mkdir(parents=True)
    manifest = {}
    for name, value in values.items():
        path = directory / name
        if isinstance(value, ModelArtifact):
            save_artifact(value, path)
            manifest[name] = {"type": "model", "kind": value.kind}
        elif (
            isinstance(value, dict)
            and value
            and all(isinstance(v, ModelArtifact) for v in value.values())
        ):
            save_artifacts(value, path)
            manifest[name] = {"type": "models", "kinds": {k: v.kind for k, v in value.items()}}
        elif isinstance(value, pd.DataFrame):
            value.to_parquet(path.with_suffix(".parquet"))
            manifest[name] = {"type": "table"}
        elif isinstance(value, BaseModel):
            path.with_suffix(".json").write_text(value.model_dump_json())
            cls = type(value)
            manifest[name] = {"type": "params", "class": f"{cls.__module__}:{cls.__qualname__}"}
        else:
            path.with_suffix(".json").write_text(json.dumps(value))
            manifest[name] = {"type": "json"}
    (directory / "MANIFEST.json").write_text(json.dumps(manifest, indent=1))


def read_values(directory: Path) -> dict[str, Any]:
    manifest = json.loads((directory / "MANIFEST.json").read_text())
    values: dict[str, Any] = {}
    for name, entry in manifest.items():
        path = directory / name
        if entry["type"] == "model":
            values[name] = load_artifact(path, entry["kind"])
        elif entry["type"] == "models":
            values[name] = {k: load_artifact(path / k, kind) for k, kind in entry["kinds"].items()}
        elif entry["type"] == "table":
            values[name] = pd.read_parquet(path.with_suffix(".parquet"))
        elif entry["type"] == "params":
            values[name] = _params_class(entry["class"]).model_validate_json(
                path.with_suffix(".json").read_text()
            )
        else:
            values[name] = json.loads(path.with_suffix(".json").read_text())
    return values


def _params_class(qualified: str) -> type[BaseModel]:
    """Only the project's own parameter models are rebuilt: a manifest names no other code."""
    module, name = qualified.split(":")
    if not module.startswith("alignment_stages."):
        raise ValueError(f"refusing to load parameters of class {qualified}")
    cls = getattr(importlib.import_module(module), name)
    if not (isinstance(cls, type) and issubclass(cls, BaseModel)):
        raise ValueError(f"{qualified} is not a parameter model")
    return cls


def worker_main(address: str, workdir: Path) -> None:
    """One launched process: run the stage; the main process writes the outputs."""
    import torch
    from accelerate import PartialState

    # The first PartialState fixes the process group for every later Accelerator. Built with
    # cpu=False on a machine without CUDA, accelerate 1.15 makes it DistributedType.NO with one
    # process under `--multi_gpu`, and each rank then trains alone; PPO's accelerator asks for
    # the CPU the same way (ppo.trainer.ppo_accelerator), which gives MULTI_CPU over gloo.
    state = PartialState(cpu=not torch.cuda.is_available())
    with parent_run(state.is_main_process):
        outputs = _import_stage(address)(**read_values(workdir / "inputs"))
    if state.is_main_process:
        write_values(outputs, workdir / "outputs")
    del outputs
    # A DDP wrapper kept alive by a reference cycle would be freed at interpreter exit, after the
    # process group below is gone, and its reducer can then hang the rank (docs/pitfalls.md).
    gc.collect()
    state.wait_for_everyone()
    # Tear the process group down before exit: gloo threads still running when the interpreter
    # exits can end a rank with "terminate called without an active exception".
    state.destroy_process_group()


if __name__ == "__main__":
    worker_main(sys.argv[1], Path(sys.argv[2]))
