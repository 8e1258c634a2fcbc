"""The start and every seed's two short runs on the same evaluation set, and the intervals.

The start is sampled once; each seed's PPO and DPO policies with the same prompts and the same
sampling seed, so every difference is paired per (prompt, sample). Intervals resample prompts
and training seeds (`behaviour.intervals.bootstrap_mean` with `replicates`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from alignment_stages.behaviour.intervals import Interval, bootstrap_mean
from alignment_stages.evaluation.compare import stage_row
from alignment_stages.evaluation.protocol import EvalProtocol
from alignment_stages.evaluation.snapshot import Generations
from alignment_stages.models.artifacts import ModelArtifact


@dataclass
class Evaluated:
    metrics: dict  # the snapshot metrics of `EvalProtocol.evaluate`
    generations: Generations

    def samples(self) -> dict[str, np.ndarray]:
        """(N,) per-sample values, in the fixed (prompt, sample) order."""
        g = self.generations
        return {
            "violation": (np.asarray(g.labels) == "violation").astype(float),
            "reward": np.asarray(g.rewards, dtype=float),
            "kl": np.asarray(g.kl_to_base, dtype=float),
            "eos": np.asarray(g.has_eos, dtype=float),
            "length": np.asarray(g.lengths, dtype=float),
        }


@dataclass
class ProbeEvaluation:
    start: Evaluated
    ppo: dict[int, Evaluated]  # seed → the seed's short PPO
    dpo: dict[int, Evaluated]  # seed → the seed's short DPO

    @property
    def seeds(self) -> list[int]:
        return list(self.ppo)

    def only(self, seed: int) -> ProbeEvaluation:
        return ProbeEvaluation(self.start, {seed: self.ppo[seed]}, {seed: self.dpo[seed]})

    def rows(self, seed: int) -> dict[str, dict]:
        """The evaluation pipeline's comparison row of start, PPO and DPO for one seed."""
        start = self.start.generations
        return {
            "start": stage_row("start", self.start.metrics, start, start),
            "ppo": stage_row("ppo", self.ppo[seed].metrics, self.ppo[seed].generations, start),
            "dpo": stage_row("dpo", self.dpo[seed].metrics, self.dpo[seed].generations, start),
        }


def evaluate_probe(
    ppo: dict[int, ModelArtifact], dpo: dict[int, ModelArtifact], protocol: EvalProtocol
) -> ProbeEvaluation:
    """The start (the protocol's base) and every seed's two policies, under `protocol`."""
    if set(ppo) != set(dpo):
        raise ValueError(f"PPO ran seeds {sorted(ppo)} but DPO ran {sorted(dpo)}")

    def run(policy: ModelArtifact) -> Evaluated:
        evaluated = protocol.evaluate(policy)
        return Evaluated(evaluated.metrics, evaluated.generations)

    return ProbeEvaluation(
        run(protocol.base),
        {seed: run(policy) for seed, policy in ppo.items()},
        {seed: run(dpo[seed]) for seed in ppo},
    )


# A per-sample statistic of one seed: (start, ppo, dpo) samples → (N,) values.
Statistic = Callable[[dict, dict, dict], np.ndarray]


def paired_interval(
    evaluation: ProbeEvaluation, statistic: Statistic, confidence: float, seed: int
) -> Interval:
    """Interval of the mean of `statistic` over every (seed, prompt, sample), resampling
    prompts and training seeds."""
    start = evaluation.start.samples()
    values, groups, replicates = [], [], []
    for run_seed in evaluation.seeds:
        ppo, dpo = evaluation.ppo[run_seed].samples(), evaluation.dpo[run_seed].samples()
        values.append(statistic(start, ppo, dpo))
        groups += evaluation.start.generations.prompt_ids
        replicates += [run_seed] * len(values[-1])
    return bootstrap_mean(np.concatenate(values), groups, confidence=confidence, seed=seed,
                          replicates=replicates)  # fmt: skip


def per_seed_interval(values: dict[int, float], confidence: float, seed: int) -> Interval:
    """Interval of a per-policy statistic (probe perplexity, distinct-2: no per-sample value),
    resampling the training seeds; a single seed gives a point."""
    seeds = list(values)
    return bootstrap_mean([values[s] for s in seeds], [str(s) for s in seeds],
                          confidence=confidence, seed=seed)  # fmt: skip
