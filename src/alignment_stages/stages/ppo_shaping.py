"""The `ppo_shaping` stage: PPO (or TRL's GRPO / RLOO) rounds, each measured under one
`EvalProtocol`, the history stamped so that the evaluation stage can reuse it.

`ppo` is the project's own PPO. `grpo` and `rloo` run TRL's maintained critic-free trainers
through the same rounds, history and checkpoint contract, so the gate and evaluation work
unchanged.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from pydantic import Field

from alignment_stages.evaluation.config import RoundEvalParams
from alignment_stages.evaluation.protocol import EvalProtocol
from alignment_stages.judges.config import JudgesParams
from alignment_stages.models.artifacts import ModelArtifact
from alignment_stages.ppo.checkpoint import RoundCheckpoints
from alignment_stages.ppo.config import PPOShapingParams
from alignment_stages.ppo.critic_free import run_critic_free_rounds
from alignment_stages.ppo.prompt_cycles import within_prompt_budget
from alignment_stages.ppo.recorder import ShapingInputs
from alignment_stages.ppo.rounds import run_shaping_rounds
from alignment_stages.reward.ensemble import RewardEnsemble
from alignment_stages.tracking import log_update_metrics

SHAPING_ALGORITHMS = {
    "ppo": run_shaping_rounds,
    "grpo": run_critic_free_rounds,
    "rloo": run_critic_free_rounds,
}


class ShapingStageParams(PPOShapingParams):
    """The `ppo_shaping` block: PPO's own parameters and the evaluation after every round."""

    eval: RoundEvalParams = Field(
        default_factory=RoundEvalParams, description="how each round's policy is measured"
    )


def shape_policy_stage(
    params: ShapingStageParams,
    judges: JudgesParams,
    *,
    base_policy: ModelArtifact,
    reward_model: ModelArtifact,
    reward_model_metrics: dict[str, Any],
    reward_ensemble: dict[str, ModelArtifact] | None = None,
    ppo_prompts: pd.DataFrame,
    eval_prompts: pd.DataFrame,
    capability_probe: pd.DataFrame,
    checkpoints: RoundCheckpoints | None = None,
    safety_classifier: ModelArtifact | None = None,
) -> dict[str, Any]:
    """The `ppo_shaping` stage as `alignment_stages.launcher` runs it, inline or launched (by
    keyword): parameters, then the models, then the prompts, then where rounds are checkpointed.
    PPO optimises `reward_model`; the held-out `reward_ensemble` members only watch it. Each
    update's statistics go to the active MLflow run as they come, if there is one.
    `safety_classifier` is the learned judge's, where `behaviour_judges.learned` names no path."""
    ensemble = RewardEnsemble.from_metrics(
        reward_model, reward_ensemble or {}, reward_model_metrics
    )
    protocol = EvalProtocol.from_config(base_policy, reward_model, judges, eval_prompts,
                                        capability_probe, params.eval, ensemble,
                                        safety_classifier)  # fmt: skip
    # Round checkpoints and resume are PPO's; TRL's trainers keep their own `output_dir`.
    resume = {"checkpoints": checkpoints} if params.algorithm == "ppo" else {}
    ppo_prompts = within_prompt_budget(
        ppo_prompts, base_policy.tokenizer, params.ppo.max_prompt_tokens
    )
    inputs = ShapingInputs(
        base_policy, reward_model, reward_model_metrics, ppo_prompts, protocol.judges, protocol
    )
    result = SHAPING_ALGORITHMS[params.algorithm](
        inputs, params, on_update=log_update_metrics, **resume
    )
    # Each evaluated row is stamped with its policy's weights and the protocol, so that the
    # evaluation stage can reuse the rows it would compute again (evaluation.memo).
    history = protocol.stamp(
        result.ppo_history, {"base_policy": base_policy, **result.round_policies}
    )
    return {
        "ppo_policy": result.ppo_policy,
        "ppo_history": history,
        "ppo_round_policies": result.round_policies,
        "stop_reason": result.stop_reason,
    }
