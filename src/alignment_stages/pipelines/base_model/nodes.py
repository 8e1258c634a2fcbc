"""Thin adapter from the catalog to `alignment_stages.stages.base_model`."""

import pandas as pd

from alignment_stages.judges.config import JudgesParams
from alignment_stages.models.artifacts import ModelArtifact
from alignment_stages.models.config import BaseModelParams
from alignment_stages.stages.base_model import build_base_policy_with_own_samples


def build_base_policy_node(
    sft_examples: pd.DataFrame,
    ppo_prompts: pd.DataFrame,
    params: BaseModelParams,
    judges: JudgesParams,
) -> ModelArtifact:
    """`ppo_prompts`' unsafe prompts are what the checkpoint refuses in its own words, where
    `sft.own_refusals` is set, and its benign ones what it answers, where `sft.own_answers` is
    set; otherwise they are not read."""
    return build_base_policy_with_own_samples(sft_examples, ppo_prompts, params, judges)
