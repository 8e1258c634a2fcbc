"""A GGUF checkpoint's dequantised weights and tokenizer, kept as safetensors after the first load.

transformers reads a GGUF in full three times to load it (the architecture check, the weights,
the tokenizer) and rebuilds its tensor-name map once per tensor: 45 s for SmolLM2-135M's file on
a 2-core AMD EPYC, where the same weights as safetensors load in about a second. A `--env
smollm2` run loads the checkpoint twice (the base's SFT and the evaluation's raw checkpoint), an
Airflow deployment once per task that needs it. So the first load writes what it dequantised
under `base_model.gguf_cache`, in a folder named by the file's SHA-256 and the transformers and
gguf versions that read it, and later loads read that folder instead.

The folder is a model artifact (`models.artifacts`), so it appears whole or not at all: it is
written under a dot-name, marked complete, then renamed into place, and a killed write leaves
only a dot-folder that no load reads. A folder that does not load is named in a warning and
the GGUF is read instead; the cache is never the only copy of anything.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import logging
from pathlib import Path

from alignment_stages.models.artifacts import ModelArtifact, load_artifact, save_artifact

logger = logging.getLogger(__name__)
_HASH_BLOCK = 1 << 20


def cache_entry(gguf: Path, root: Path) -> Path:
    """The folder under `root` for this GGUF file as these library versions dequantise it."""
    digest = hashlib.sha256()
    with gguf.open("rb") as handle:
        for block in iter(lambda: handle.read(_HASH_BLOCK), b""):
            digest.update(block)
    versions = "-".join(
        f"{name}{importlib.metadata.version(name)}" for name in ("transformers", "gguf")
    )
    return root.expanduser() / f"{gguf.stem}-{digest.hexdigest()[:16]}-{versions}"


def load_cached(entry: Path) -> ModelArtifact | None:
    """The cached model and tokenizer, or None where there is no whole folder to read. The
    folder is a model artifact (`models.artifacts`): safetensors only, marked complete last."""
    if not entry.is_dir():
        return None
    try:
        cached = load_artifact(entry, "causal_lm")
    except (OSError, ValueError) as exc:
        logger.warning(
            "gguf_cache: %s does not load (%s); reading the GGUF instead. Delete the folder to "
            "have it written again.",
            entry,
            exc,
        )
        return None
    logger.info("gguf_cache: read the dequantised checkpoint from %s", entry)
    return cached


def write_cache(artifact: ModelArtifact, entry: Path) -> None:
    """Write `artifact` to `entry` whole or not at all (`save_artifact` stages it in a hidden
    sibling and renames it into place). A failure is a warning: the GGUF itself stays the
    source, and the next load reads it again."""
    try:
        save_artifact(artifact, entry)  # another process may have saved its own copy first
        logger.info("gguf_cache: kept the dequantised checkpoint in %s", entry)
    except OSError as exc:
        logger.warning("gguf_cache: could not keep the checkpoint in %s (%s)", entry, exc)
