"""The reward model PPO optimises (the proxy) beside held-out reward models: the signals of
over-optimisation that `ppo_history` records each round.

Gao et al. 2022 ("Scaling Laws for Reward Model Overoptimization") show the proxy reward still
rising with √KL while the gold reward turns down; Coste et al. 2023 ("Reward Model Ensembles
Help Mitigate Overoptimization") and Eisenstein et al. 2023 ("Helping or Herding?") read the
disagreement within an ensemble of reward models as the sign. No gold model exists here, so the
held-out members play its part: they saw the same kind of pairs but PPO never optimised them.

Every score is in its own model's normalised units, (score − chosen mean) / chosen std on
`preference_val`, so members trained apart are comparable.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from alignment_stages.behaviour.intervals import cluster_standard_error
from alignment_stages.models.artifacts import ModelArtifact
from alignment_stages.models.precision import Precision, scoring_precision
from alignment_stages.reward.scoring import score_responses


@dataclass(frozen=True)
class ScoredModel:
    artifact: ModelArtifact
    mean: float  # chosen-score mean on preference_val
    std: float  # chosen-score std on preference_val

    def normalised(self, prompts: Sequence, texts: Sequence[str]) -> np.ndarray:
        return self.normalise(score_responses(self.artifact, prompts, list(texts)).numpy())

    def normalise(self, raw: np.ndarray) -> np.ndarray:
        return (np.asarray(raw, dtype=float) - self.mean) / max(self.std, 1e-6)


@dataclass(frozen=True)
class RewardEnsemble:
    proxy: ScoredModel
    heldout: tuple[ScoredModel, ...]

    @classmethod
    def from_metrics(
        cls,
        proxy: ModelArtifact,
        heldout: Mapping[str, ModelArtifact],
        reward_model_metrics: Mapping[str, Any],
    ) -> RewardEnsemble:
        """`reward_model_metrics` carries each member's chosen-score statistics; a held-out
        member without them is a mismatched artifact (another run's ensemble)."""
        members = reward_model_metrics.get("ensemble", {})
        missing = sorted(set(heldout) - set(members))
        if missing:
            raise ValueError(
                f"reward_ensemble has members {missing} that reward_model_metrics does not "
                "describe: the two come from different reward-model runs"
            )
        chosen = reward_model_metrics["score_chosen"]
        return cls(
            ScoredModel(proxy, chosen["mean"], chosen["std"]),
            tuple(
                ScoredModel(
                    heldout[name],
                    members[name]["score_chosen"]["mean"],
                    members[name]["score_chosen"]["std"],
                )
                for name in sorted(heldout)
            ),
        )

    def ranking_scores(
        self, prompts: Sequence, texts: Sequence[str], precision: Precision = "fp32"
    ) -> np.ndarray:
        """(N,) each answer's normalised reward averaged over the proxy and every held-out
        member: the ensemble's ranking (on-policy pairs). Every member scores at `precision`
        with its own frozen weights cast once: only the proxy was, and the held-out members
        re-cast every weight at every forward."""
        members = [self.proxy, *self.heldout]
        with contextlib.ExitStack() as stack:
            for member in members:
                stack.enter_context(scoring_precision(member.artifact.model, precision))
            return np.mean([m.normalised(prompts, texts) for m in members], axis=0)

    def metrics(
        self,
        prompts: Sequence,
        texts: Sequence[str],
        prompt_ids: Sequence[str],
        proxy_raw: np.ndarray,
    ) -> dict[str, float]:
        """Per policy snapshot: the proxy's and the held-out members' mean normalised reward,
        their gap, the ensemble's mean and its spread (the std across members per answer,
        averaged), each with its standard error over prompts. `proxy_raw`: the proxy's raw
        scores of these texts, which the evaluation has already computed."""
        proxy = self.proxy.normalise(proxy_raw)
        out = {"proxy_reward": float(proxy.mean()),
               "proxy_reward_se": cluster_standard_error(proxy.tolist(), prompt_ids)}  # fmt: skip
        if not self.heldout:  # no ensemble: nothing to compare the proxy with
            return out
        heldout = np.stack([m.normalised(prompts, texts) for m in self.heldout])
        members = np.vstack([proxy[None, :], heldout])
        spread = members.std(axis=0, ddof=1)
        heldout_mean = heldout.mean(axis=0)
        return out | {
            "heldout_reward": float(heldout_mean.mean()),
            "heldout_reward_se": cluster_standard_error(heldout_mean.tolist(), prompt_ids),
            "proxy_heldout_gap": float((proxy - heldout_mean).mean()),
            "ensemble_mean": float(members.mean()),
            "ensemble_spread": float(spread.mean()),
            "ensemble_spread_se": cluster_standard_error(spread.tolist(), prompt_ids),
        }
