"""Thin adapter from the catalog to `alignment_stages.gate`."""

import logging
from typing import Any

import pandas as pd

from alignment_stages.dpo.config import PAIRS_MEANING, DPORefinementParams
from alignment_stages.gate.config import StabilityGateParams
from alignment_stages.gate.report import render_gate_report
from alignment_stages.gate.rules import decide

logger = logging.getLogger(__name__)


def apply_stability_gate(
    ppo_history: pd.DataFrame,
    ppo_round_policies: dict[str, Any],
    params: StabilityGateParams,
    dpo: DPORefinementParams,
) -> dict[str, Any]:
    """`ppo_round_policies` is read for its version only; no weights are loaded here. The
    report ends with the pairs DPO will settle on (`dpo_refinement.pairs`)."""
    decision = decide(ppo_history, params, getattr(ppo_round_policies, "version", None))
    logger.info(
        "gate/decision=%s gate/selected_round=%d", decision.decision, decision.selected_round
    )
    for signal in decision.signals:
        logger.info("gate/%s=%.4g (%s)", signal.name, signal.value, signal.verdict)
    return {
        "gate_decision": decision.as_dict(),
        "gate_report": render_gate_report(decision, ppo_history)
        + f"\nDPO settles on `{dpo.pairs}` pairs ({PAIRS_MEANING[dpo.pairs]}).\n",
    }
