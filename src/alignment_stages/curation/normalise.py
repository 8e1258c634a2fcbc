"""Text normalisation and the stable pair identity."""

from __future__ import annotations

import functools
import hashlib
import re
import sys
import unicodedata

_BLANK_LINES = re.compile(r"\n{3,}")


def normalise_text(text: str) -> str:
    """NFC, one space for any run of other whitespace (tabs, NBSP, \\r included), no whitespace at
    line ends, at most one blank line in a row. Line breaks are kept: they carry lists and code.

    `str.split()` does the whitespace work; it is several times faster than a regex substitution,
    which matters at a million pairs (benchmarks/curation_throughput.py).
    """
    if not text.isascii():  # ASCII is always NFC; skipping it keeps the common case fast
        text = unicodedata.normalize("NFC", text)
    if "\n" not in text:
        return " ".join(text.split())
    text = "\n".join(" ".join(line.split()) for line in text.split("\n"))
    if "\n\n\n" in text:
        text = _BLANK_LINES.sub("\n\n", text)
    return text.strip("\n")


@functools.cache
def _invisible_characters() -> dict[int, None]:
    """Every format character (Unicode category Cf: U+200B zero-width space, U+00AD soft hyphen,
    U+2060 word joiner, U+FEFF, the bidi marks), as a `str.translate` table that drops them.
    Built once, on the first non-ASCII text."""
    return {c: None for c in range(sys.maxunicode + 1) if unicodedata.category(chr(c)) == "Cf"}


def identity_text(text: str) -> str:
    """`text` (already normalised) as a reader sees it, for comparing two texts: NFKC folds
    full-width letters, ligatures and other compatibility forms into their plain form, and
    invisible format characters are dropped. Two answers equal here look identical on screen.

    Only identity uses this; stored text stays NFC, because NFKC would also rewrite meaningful
    forms (x² becomes x2).
    """
    if text.isascii():  # ASCII has no compatibility or format characters
        return text
    folded = unicodedata.normalize("NFKC", text).translate(_invisible_characters())
    return normalise_text(folded)  # NFKC can leave new spaces (U+3000), dropping can join runs


def render_prompt_text(messages: list[dict[str, str]]) -> str:
    """A single user turn is its own text; a conversation is rendered turn by turn."""
    if len(messages) == 1 and messages[0]["role"] == "user":
        return messages[0]["content"]
    return "\n".join(f"{m['role']}: {m['content']}" for m in messages)


def stable_hash(*parts: str) -> str:
    """64-bit hex digest, identical across runs, processes and machines (unlike `hash`)."""
    digest = hashlib.blake2b("\x1f".join(parts).encode("utf-8"), digest_size=8)
    return digest.hexdigest()


def hash_position(seed: int, text: str) -> float:
    """A uniform [0, 1) position for `text`, from a salted 64-bit hash: where a prompt falls
    when shares of [0, 1) are split between uses. Stable across runs and machines."""
    return int(stable_hash(str(seed), text), 16) / 2**64


def pair_id(prompt_text: str, chosen: str, rejected: str) -> str:
    """Pairs that differ only by invisible or compatibility characters are the same pair."""
    return stable_hash(identity_text(prompt_text), identity_text(chosen), identity_text(rejected))


def prompt_id(prompt_text: str) -> str:
    return stable_hash(prompt_text)
