"""Text normalisation and the stable pair identity."""

from __future__ import annotations

import hashlib
import re
import unicodedata

_HORIZONTAL_SPACE = re.compile(r"[^\S\n]+")  # every whitespace character but the newline
_SPACE_AROUND_NEWLINE = re.compile(r" ?\n ?")
_BLANK_LINES = re.compile(r"\n{3,}")


def normalise_text(text: str) -> str:
    """NFC, one space for any run of horizontal whitespace (tabs, NBSP, \\r included), at most one
    blank line in a row, no surrounding whitespace. Line breaks are kept: they carry lists and code.
    """
    if not text.isascii():  # ASCII is always NFC; skipping it keeps the common case fast
        text = unicodedata.normalize("NFC", text)
    text = _HORIZONTAL_SPACE.sub(" ", text)
    if "\n" in text:
        text = _BLANK_LINES.sub("\n\n", _SPACE_AROUND_NEWLINE.sub("\n", text))
    return text.strip()


def render_prompt_text(messages: list[dict[str, str]]) -> str:
    """A single user turn is its own text; a conversation is rendered turn by turn."""
    if len(messages) == 1 and messages[0]["role"] == "user":
        return messages[0]["content"]
    return "\n".join(f"{m['role']}: {m['content']}" for m in messages)


def stable_hash(*parts: str) -> str:
    """64-bit hex digest, identical across runs, processes and machines (unlike `hash`)."""
    digest = hashlib.blake2b("\x1f".join(parts).encode("utf-8"), digest_size=8)
    return digest.hexdigest()


def pair_id(prompt_text: str, chosen: str, rejected: str) -> str:
    return stable_hash(prompt_text, chosen, rejected)


def prompt_id(prompt_text: str) -> str:
    return stable_hash(prompt_text)
