"""`ppo_shaping.algorithm` → the function that runs the shaping rounds.

`ppo` is the project's own PPO. `grpo` and `rloo` run TRL's maintained critic-free trainers
through the same rounds, history and checkpoint contract, so the gate and evaluation work
unchanged.
"""

from typing import Any

import pandas as pd

from alignment_stages.evaluation.memo import protocol_fingerprint, stamp_history
from alignment_stages.judges.config import JudgesParams, build_judge_panel
from alignment_stages.models.artifacts import ModelArtifact
from alignment_stages.ppo.checkpoint import RoundCheckpoints
from alignment_stages.ppo.config import PPOShapingParams
from alignment_stages.ppo.critic_free import run_critic_free_rounds
from alignment_stages.ppo.rounds import run_shaping_rounds
from alignment_stages.reward.ensemble import RewardEnsemble
from alignment_stages.tracking import log_update_metrics

SHAPING_ALGORITHMS = {
    "ppo": run_shaping_rounds,
    "grpo": run_critic_free_rounds,
    "rloo": run_critic_free_rounds,
}


def shape_policy_stage(
    base_policy: ModelArtifact,
    reward_model: ModelArtifact,
    reward_model_metrics: dict[str, Any],
    ppo_prompts: pd.DataFrame,
    eval_prompts: pd.DataFrame,
    capability_probe: pd.DataFrame,
    params: PPOShapingParams,
    judges: JudgesParams,
    reward_ensemble: dict[str, ModelArtifact] | None = None,
    checkpoints: RoundCheckpoints | None = None,
) -> dict[str, Any]:
    """The `ppo_shaping` stage as `alignment_stages.launcher` runs it, inline or launched.
    PPO optimises `reward_model`; the held-out `reward_ensemble` members only watch it. Each
    update's statistics go to the active MLflow run as they come, if there is one."""
    judge_panel = build_judge_panel(judges, reward_model)
    ensemble = RewardEnsemble.from_metrics(
        reward_model, reward_ensemble or {}, reward_model_metrics
    )
    # Round checkpoints and resume are PPO's; TRL's trainers keep their own `output_dir`.
    resume = {"checkpoints": checkpoints} if params.algorithm == "ppo" else {}
    result = SHAPING_ALGORITHMS[params.algorithm](
        base_policy, reward_model, reward_model_metrics, ppo_prompts, eval_prompts,
        capability_probe, judge_panel, params, ensemble=ensemble, on_update=log_update_metrics,
        **resume,
    )  # fmt: skip
    # Each evaluated row is stamped with its policy's weights and the protocol, so that the
    # evaluation stage can reuse the rows it would compute again (evaluation.memo).
    protocol = protocol_fingerprint(
        params.eval, eval_prompts, capability_probe, judges, reward_model, base_policy
    )
    history = stamp_history(
        result.ppo_history, {"base_policy": base_policy, **result.round_policies}, protocol
    )
    return {
        "ppo_policy": result.ppo_policy,
        "ppo_history": history,
        "ppo_round_policies": result.round_policies,
        "stop_reason": result.stop_reason,
    }
