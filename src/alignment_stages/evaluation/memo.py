"""Reusing an evaluation that was already made.

`EvalProtocol.evaluate` samples from fixed seeds, then judges, scores and probes the answers:
given the same weights and the same protocol (the base it measures KL against, the reward model,
the judges, the prompts, the probe and the sampling parameters) it computes the same thing. PPO
evaluates its starting policy and every round (`ppo_history`); the evaluation stage then
evaluates the base, the last round and the gate's round again. When the two protocols agree, the
stage takes PPO's record of a policy whose weights it finds in `ppo_history` instead of
computing it a second time. On SmolLM2 one evaluation of 120 prompts costs about a minute.

Each `ppo_history` row carries its evaluation's generations (`eval_generations`), the
fingerprint of the policy's weights (`eval_weights`) and of the protocol (`eval_protocol`,
`EvalProtocol.fingerprint`).
Fingerprints hash the bytes: a policy that differs in one weight, or a protocol that differs in
one prompt, is evaluated afresh.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import asdict, fields
from typing import Any

import pandas as pd
import torch

from alignment_stages.evaluation.snapshot import Generations
from alignment_stages.models.artifacts import ModelArtifact

GENERATIONS_COLUMN = "eval_generations"
WEIGHTS_COLUMN = "eval_weights"
PROTOCOL_COLUMN = "eval_protocol"

logger = logging.getLogger(__name__)


def weights_fingerprint(model: torch.nn.Module) -> str:
    """BLAKE2b of every tensor of the state dict: name, dtype, shape and bytes (about 1 s for
    SmolLM2's 540 MB). A LoRA policy hashes its base and its adapter, as saved and loaded."""
    digest = hashlib.blake2b(digest_size=20)
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}".encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy())
    return digest.hexdigest()


def generations_to_json(generations: Generations) -> str:
    return json.dumps(asdict(generations), ensure_ascii=False)


# Fields added after evaluations were first stored: an older evaluation has them empty.
LATER_FIELDS = ("heldout_labels",)


def generations_from_json(text: str) -> Generations:
    values = json.loads(text)
    missing = [f.name for f in fields(Generations)
               if f.name not in values and f.name not in LATER_FIELDS]  # fmt: skip
    if missing:
        raise ValueError(f"a stored evaluation lacks the generations' fields {missing}")
    return Generations(**{f.name: values[f.name] for f in fields(Generations) if f.name in values})


def stamp_history(
    history: pd.DataFrame, policies: Mapping[str, ModelArtifact], protocol: str
) -> pd.DataFrame:
    """`history` with each evaluated row's weights fingerprint (`policies` by checkpoint name,
    "base_policy" for round 0) and the protocol its evaluations followed."""
    stamped = history.copy()
    stamped[WEIGHTS_COLUMN] = [
        weights_fingerprint(policies[checkpoint].model)
        if isinstance(checkpoint, str) and checkpoint in policies
        else None
        for checkpoint in stamped["checkpoint"]
    ]
    stamped[PROTOCOL_COLUMN] = protocol
    return stamped


def reusable_evaluations(
    history: pd.DataFrame, protocol: str
) -> dict[str, tuple[dict[str, Any], Generations]]:
    """{weights fingerprint: (metrics, generations)} of the rows evaluated under `protocol`. A
    history from before these columns, or from another protocol, gives none."""
    columns = {GENERATIONS_COLUMN, WEIGHTS_COLUMN, PROTOCOL_COLUMN}
    if not columns <= set(history.columns):
        return {}
    reusable = {}
    for row in history.to_dict("records"):
        generations, weights = row[GENERATIONS_COLUMN], row[WEIGHTS_COLUMN]
        if row[PROTOCOL_COLUMN] != protocol or not isinstance(weights, str):
            continue
        if not isinstance(generations, str):
            continue
        try:
            parsed = generations_from_json(generations)
        except ValueError as error:  # json.JSONDecodeError is a ValueError
            # A damaged row costs an evaluation, never a wrong one.
            logger.warning(
                "eval/memo: the stored evaluation of %s is unreadable (%s); evaluating it again",
                row.get("checkpoint"), error,
            )  # fmt: skip
            continue
        metrics = {key: value for key, value in row.items() if key not in columns}
        reusable[weights] = (metrics, parsed)
    return reusable
