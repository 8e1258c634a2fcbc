"""DPO refinement: the gate controls the start, and the reference is the start policy."""

import pandas as pd
import pytest
import torch

from alignment_stages.datasets.hf_model import ArtifactCollection
from alignment_stages.dpo.config import DPORefinementParams
from alignment_stages.dpo.refine import (
    GateNotPassedError,
    UnjudgedStartPolicyError,
    refine_with_dpo,
    select_start_policy,
)
from tests.models.tiny import tiny_policy
from tests.models.trainer_steps import CapturedTrainer, assert_same_step, capture, first_step

PROMPT = [{"role": "user", "content": "How do I cook rice?"}]
PAIRS = pd.DataFrame(
    {
        "prompt_messages": [PROMPT] * 16,
        "prompt_text": [f"How do I cook rice {i}?" for i in range(16)],
        "chosen": ["Rinse it, then simmer it."] * 16,
        "rejected": ["Go away."] * 16,
        "category": ["benign"] * 16,
    }
)
TINY = {"training": {"epochs": 1, "batch_size": 8, "max_length": 64, "logging_steps": 1},
        "kl_eval": {"max_new_tokens": 4, "max_prompts": 4}}  # fmt: skip


def _decision(decision, checkpoint="round_001", version=None):
    return {
        "decision": decision,
        "selected_checkpoint": checkpoint,
        "checkpoint_version": version,
        "reasons": ["still chaotic → keep shaping"],
    }


def _rounds(version, pinned=False, **policies):
    collection = ArtifactCollection({name: (lambda p=p: p) for name, p in policies.items()})
    collection.version, collection.pinned = version, pinned
    return collection


JUDGED, NEWER = "2026-12-01T10.00.00.000Z", "2026-12-01T11.00.00.000Z"


@pytest.mark.parametrize("decision", ["continue_shaping", "halt"])
def test_no_switch_stops_before_dpo_quoting_the_gate(decision):
    with pytest.raises(GateNotPassedError, match=f"'{decision}': still chaotic → keep shaping"):
        select_start_policy(_decision(decision), {}, tiny_policy(), on_unsettled="stop")


def test_proceed_overrides_with_a_warning_and_selects_the_round(caplog):
    start = tiny_policy()
    chosen = select_start_policy(
        _decision("halt"), {"round_001": lambda: start}, tiny_policy(), on_unsettled="proceed"
    )
    assert chosen is start and "proceeding to DPO" in caplog.text


def test_round_zero_means_the_base_policy_and_unknown_rounds_are_errors():
    base = tiny_policy()
    assert (
        select_start_policy(
            _decision("switch_to_refinement", "base_policy"), {}, base, on_unsettled="stop"
        )
        is base
    )
    with pytest.raises(UnjudgedStartPolicyError, match="round_009"):
        select_start_policy(
            _decision("rollback_and_switch", "round_009"),
            {"round_001": None},
            base,
            on_unsettled="stop",
        )


def test_round_policies_the_gate_did_not_judge_are_refused_naming_both_versions():
    decision = _decision("switch_to_refinement", "round_002", JUDGED)
    newer = _rounds(NEWER, round_001=tiny_policy(), round_002=tiny_policy())
    with pytest.raises(UnjudgedStartPolicyError, match=f"judged .* {JUDGED}, but .* {NEWER}"):
        select_start_policy(decision, newer, tiny_policy(), on_unsettled="stop")
    judged_round = tiny_policy()
    judged = _rounds(JUDGED, round_002=judged_round)
    assert select_start_policy(decision, judged, tiny_policy(), on_unsettled="stop") is judged_round


def test_a_pinned_version_is_used_with_a_warning(caplog):
    pinned_round = tiny_policy()
    pinned = _rounds(NEWER, pinned=True, round_002=pinned_round)
    decision = _decision("switch_to_refinement", "round_002", JUDGED)
    assert select_start_policy(decision, pinned, tiny_policy(), on_unsettled="stop") is pinned_round
    assert "pinned" in caplog.text and JUDGED in caplog.text


def test_a_missing_round_names_the_judged_and_loaded_versions():
    # A 1-round run pinned in place of the 2-round run the gate judged.
    short = _rounds(NEWER, pinned=True, round_001=tiny_policy())
    decision = _decision("switch_to_refinement", "round_002", JUDGED)
    with pytest.raises(
        UnjudgedStartPolicyError, match=f"'round_002' of .* {JUDGED}.*loaded \\({NEWER}\\)"
    ):
        select_start_policy(decision, short, tiny_policy(), on_unsettled="stop")


@pytest.mark.parametrize("lora", [True, False])
def test_dpo_trains_a_copy_and_records_its_history(lora):
    start = tiny_policy()
    before = {k: v.clone() for k, v in start.model.state_dict().items()}
    params = DPORefinementParams(
        **TINY, lora={"enabled": lora, "r": 2, "alpha": 4, "target_modules": ["q_proj", "v_proj"]}
    )
    policy, history = refine_with_dpo(start, PAIRS, params)
    assert policy.is_lora is lora
    assert {"loss", "reward_margin", "reward_accuracy", "kl_to_start"} <= set(history.columns)
    assert all(
        torch.equal(before[k], v) for k, v in start.model.state_dict().items()
    )  # start untouched


def test_bad_dpo_parameters_are_rejected():
    with pytest.raises(ValueError, match="loss_type"):
        DPORefinementParams(loss_type=["kto_magic"])
    with pytest.raises(ValueError, match="beta"):
        DPORefinementParams(beta=0)


def test_full_alignment_stops_before_dpo_when_the_gate_does_not_switch(tmp_path):
    """A sliced run of dpo_refinement: the gate said continue_shaping, so nothing is trained."""
    from kedro.io import DataCatalog, MemoryDataset, Version
    from kedro.runner import SequentialRunner

    from alignment_stages.datasets import HFModelDataset
    from alignment_stages.gate.config import StabilityGateParams
    from alignment_stages.pipelines import dpo_refinement

    saved = HFModelDataset(filepath=str(tmp_path / "dpo_policy"), version=Version(None, None))
    catalog = DataCatalog(
        {
            "gate_decision": MemoryDataset(_decision("continue_shaping")),
            "ppo_round_policies": MemoryDataset({"round_001": tiny_policy}),
            "base_policy": MemoryDataset(tiny_policy(), copy_mode="assign"),
            "params:stability_gate": MemoryDataset(StabilityGateParams()),
            "preference_train": MemoryDataset(PAIRS),
            "onpolicy_pairs": MemoryDataset(PAIRS.head(0)),
            "params:dpo_refinement": MemoryDataset(DPORefinementParams(**TINY)),
            "dpo_start_policy": MemoryDataset(copy_mode="assign"),
            "dpo_policy": saved,
            "dpo_history": MemoryDataset(),
        }
    )
    # The gate's check and DPO; the selected round's on-policy pairs are given (none).
    pipeline = dpo_refinement.create_pipeline().only_nodes(
        "select_dpo_start_policy", "refine_policy_with_dpo"
    )
    with pytest.raises(GateNotPassedError, match="'continue_shaping'"):
        SequentialRunner().run(pipeline, catalog)
    assert not (tmp_path / "dpo_policy").exists()


@pytest.mark.parametrize("lora", [True, False])
def test_dpo_loss_from_the_model_logits_equals_trls_fused_head(lora, monkeypatch):
    """On CPU DPO's log-probs come from the model's own logits (`fused_head_from_logits`): the
    loss, its gradients and the logged metrics match TRL's fused LM head."""
    import trl.trainer.utils as trl_utils
    from trl import DPOTrainer

    import alignment_stages.models.training as training

    monkeypatch.setattr(DPOTrainer, "train", capture)
    params = DPORefinementParams(
        **TINY, lora={"enabled": lora, "r": 2, "alpha": 4, "target_modules": ["q_proj", "v_proj"]}
    )
    results = []
    for from_logits in (False, True):
        if not from_logits:
            monkeypatch.setattr(training, "logits_head_off_gpu", lambda model: False)
        else:  # TRL's chunked kernel must not run at all
            monkeypatch.undo()
            monkeypatch.setattr(DPOTrainer, "train", capture)
            monkeypatch.setattr(trl_utils, "_ChunkedLogProbFunction", None)
            monkeypatch.setattr(training, "LOGITS_HEAD_MIN_PARAMETERS", 0)  # the tiny model
        torch.manual_seed(0)
        start = tiny_policy()
        with pytest.raises(CapturedTrainer) as caught:
            refine_with_dpo(start, PAIRS, params)
        results.append(first_step(caught.value.args[0]))
    assert_same_step(*results)
