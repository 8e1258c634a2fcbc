"""A model with its tokenizer, saved atomically and loaded safely.

Layout of one saved artifact directory:

    <dir>/COMPLETE            completion marker, written last, before the atomic rename
    <dir>/artifact.json       kind, LoRA or not, summary
    <dir>/model/              save_pretrained of the model (the base model when LoRA)
    <dir>/adapter/            save_pretrained of the LoRA adapter (only when LoRA)
    <dir>/tokenizer/          save_pretrained of the tokenizer

Saves write into a hidden temporary sibling, write the marker, then rename, so a crash midway
never leaves something that looks like a finished artifact. Loads take safetensors only and
never run code from the checkpoint unless `trust_remote_code` is set explicitly.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from safetensors import SafetensorError
from transformers import (
    AutoModelForCausalLM,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    PreTrainedModel,
)

from alignment_stages.staging import staging_name

ModelKind = Literal["causal_lm", "sequence_classification"]
COMPLETION_MARKER = "COMPLETE"
PICKLE_WEIGHT_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".ckpt")
_AUTO_CLASSES = {
    "causal_lm": AutoModelForCausalLM,
    "sequence_classification": AutoModelForSequenceClassification,
}


class UnsafeCheckpointError(ValueError):
    """The checkpoint holds pickle weights; loading them could execute arbitrary code."""


class IncompleteArtifactError(FileNotFoundError):
    """The directory has no completion marker: a save that did not finish."""


@dataclass
class ModelArtifact:
    """What flows between nodes: the model and the tokenizer that belongs to it."""

    model: Any  # a transformers PreTrainedModel, or a peft PeftModel wrapping one
    tokenizer: Any
    kind: ModelKind = "causal_lm"

    @property
    def is_lora(self) -> bool:
        return hasattr(self.model, "peft_config")

    def summary(self) -> dict[str, Any]:
        """Small JSON summary, shown by kedro-viz previews and written beside the weights."""
        base = self.model.get_base_model() if self.is_lora else self.model
        config = base.config
        return {
            "kind": self.kind,
            "architecture": (config.architectures or [type(base).__name__])[0],
            "model_type": config.model_type,
            "parameters": sum(p.numel() for p in self.model.parameters()),
            "trainable_parameters": sum(
                p.numel() for p in self.model.parameters() if p.requires_grad
            ),
            "lora": self.is_lora,
            "hidden_size": getattr(config, "hidden_size", None),
            "num_hidden_layers": getattr(config, "num_hidden_layers", None),
            "vocab_size": getattr(config, "vocab_size", None),
        }


def save_artifact(artifact: ModelArtifact, target: Path) -> None:
    """Atomically save to `target`, which must not exist yet."""
    _save_atomically(target, lambda staging: _write_artifact(artifact, staging))


def save_artifacts(artifacts: dict[str, ModelArtifact], target: Path) -> None:
    """Atomically save several named artifacts as subdirectories of `target`."""

    def write(staging: Path) -> None:
        for name, artifact in artifacts.items():
            _write_artifact(artifact, staging / name)
            (staging / name / COMPLETION_MARKER).write_text("ok\n")

    _save_atomically(target, write)


def _save_atomically(target: Path, write) -> None:
    """Write into a hidden sibling, add the completion marker, then rename into place."""
    target = Path(target)
    if target.exists():
        raise FileExistsError(f"refusing to overwrite the existing artifact at {target}")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.parent / staging_name(target.name)
    try:
        staging.mkdir()
        write(staging)
        (staging / COMPLETION_MARKER).write_text("ok\n")
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _write_artifact(artifact: ModelArtifact, staging: Path) -> None:
    if artifact.is_lora:
        # The base and its adapter travel together: a bare adapter is useless without it.
        base = artifact.model.get_base_model()
        base.save_pretrained(
            staging / "model", state_dict=_base_state_dict(base), safe_serialization=True
        )
        artifact.model.save_pretrained(staging / "adapter", safe_serialization=True)
    else:
        artifact.model.save_pretrained(staging / "model", safe_serialization=True)
    artifact.tokenizer.save_pretrained(staging / "tokenizer")
    (staging / "artifact.json").write_text(json.dumps(artifact.summary(), indent=2))


def _base_state_dict(base: Any) -> dict[str, torch.Tensor]:
    """The base weights under their original names: PEFT wraps each target as `base_layer`."""
    return {
        key.replace(".base_layer", ""): value
        for key, value in base.state_dict().items()
        if "lora_" not in key
    }


def is_complete(directory: Path) -> bool:
    return (Path(directory) / COMPLETION_MARKER).is_file()


def refuse_pickle_weights(directory: Path) -> None:
    """Safetensors only: a pickle file can run arbitrary code when loaded."""
    unsafe = sorted(
        str(p.relative_to(directory))
        for p in Path(directory).rglob("*")
        if p.suffix in PICKLE_WEIGHT_SUFFIXES
    )
    if unsafe:
        raise UnsafeCheckpointError(
            f"{directory} contains pickle weight files {unsafe}. Only safetensors are loaded; convert "
            "the checkpoint with `save_pretrained(..., safe_serialization=True)`."
        )


def load_pretrained_model(
    source: str | Path, kind: ModelKind, trust_remote_code: bool = False, **kwargs: Any
) -> PreTrainedModel:
    """`from_pretrained` for a local directory or a hub id, safetensors only."""
    if Path(source).is_dir():
        refuse_pickle_weights(Path(source))
    try:
        return _AUTO_CLASSES[kind].from_pretrained(
            str(source), use_safetensors=True, trust_remote_code=trust_remote_code, **kwargs
        )
    except SafetensorError as exc:  # says what is wrong with the bytes, not which file
        raise ValueError(
            f"{source}: unreadable safetensors weights ({exc}); the file is truncated or "
            "corrupt. Use another version, or save the checkpoint again."
        ) from exc


def load_tokenizer(source: str | Path, trust_remote_code: bool = False) -> Any:
    return AutoTokenizer.from_pretrained(str(source), trust_remote_code=trust_remote_code)


def load_artifact(
    directory: Path, kind: ModelKind, trust_remote_code: bool = False, trainable: bool = False
) -> ModelArtifact:
    """Load a directory written by `save_artifact`."""
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"no model artifact at {directory}")
    if not is_complete(directory):
        raise IncompleteArtifactError(
            f"{directory} has no {COMPLETION_MARKER} marker: its save did not finish. Use another version."
        )
    refuse_pickle_weights(directory)
    model = load_pretrained_model(directory / "model", kind, trust_remote_code, dtype=torch.float32)
    if (directory / "adapter").is_dir():
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, directory / "adapter", is_trainable=trainable)
    tokenizer = load_tokenizer(directory / "tokenizer", trust_remote_code)
    return ModelArtifact(model=model, tokenizer=tokenizer, kind=kind)
