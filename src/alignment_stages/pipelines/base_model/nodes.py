"""Thin adapter from the catalog to `alignment_stages.models.base`."""

import pandas as pd

from alignment_stages.models.artifacts import ModelArtifact
from alignment_stages.models.base import build_base_policy
from alignment_stages.models.config import BaseModelParams


def build_base_policy_node(sft_examples: pd.DataFrame, params: BaseModelParams) -> ModelArtifact:
    return build_base_policy(sft_examples, params)
