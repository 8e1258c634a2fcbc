"""Which pairs DPO settles on (`dpo_refinement.pairs`).

- `curated`: the curated published pairs (`preference_train`), other models' answers;
- `onpolicy`: the start policy's own answers, ranked by the judges and the reward ensemble
  (`onpolicy_pairs`, `curation.onpolicy`). DPO moves a policy most where its own answers are
  (Tajwar et al. 2024); how much that matters depends on the stage (Sun et al. 2025);
- `mixed`: both.

On-policy pairs carry the fingerprint of the weights that answered; DPO refuses pairs another
policy answered (a stale `onpolicy_pairs` version, say), since they would not be on-policy.
"""

from __future__ import annotations

import pandas as pd

from alignment_stages.dpo.config import PairSource
from alignment_stages.evaluation.memo import weights_fingerprint
from alignment_stages.models.artifacts import ModelArtifact


class MismatchedPairsError(ValueError):
    """On-policy pairs answered by another policy than the one DPO starts from."""


def dpo_pairs(
    source: PairSource,
    preference_train: pd.DataFrame,
    onpolicy_pairs: pd.DataFrame | None,
    start_policy: ModelArtifact,
) -> pd.DataFrame:
    """The pairs DPO trains on, on-policy ones checked against the start policy's weights."""
    if source == "curated":
        return preference_train
    if onpolicy_pairs is None or onpolicy_pairs.empty:
        raise ValueError(
            f"dpo_refinement.pairs={source!r}, but the start policy's answers formed no "
            "on-policy pair (onpolicy_report.no_pair says why): sample more prompts or answers "
            "(preference_sampling.prompts, samples_per_prompt), or use pairs: curated"
        )
    weights = weights_fingerprint(start_policy.model)
    answered_by = set(onpolicy_pairs["policy_weights"])
    if answered_by != {weights}:
        raise MismatchedPairsError(
            f"onpolicy_pairs were answered by weights {sorted(answered_by)}, not by the DPO "
            f"start policy ({weights}): they are another policy's pairs. Run the "
            "sample_selected_round_pairs node for this start policy (kedro run "
            "--pipeline=dpo_refinement does), or use dpo_refinement.pairs: curated"
        )
    if source == "onpolicy":
        return onpolicy_pairs
    return pd.concat([preference_train, onpolicy_pairs], ignore_index=True)
