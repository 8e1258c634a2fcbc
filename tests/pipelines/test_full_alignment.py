"""full_alignment on the demo data with the `smoke` environment (what CI runs end to end):
PPO lowers the violation rate, the gate switches, DPO keeps or improves PPO's outcome."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd

from tests.pipelines.conftest import latest as _latest
from tests.pipelines.conftest import run_smoke


def test_ppo_lowers_the_judge_violation_rate_beyond_the_rounds_intervals(shaped_project):
    """Base's and the last round's 95% intervals (bootstrapped over prompts) do not overlap."""
    history = pd.read_parquet(_latest(shaped_project, "data/07_model_output/ppo_history.parquet"))
    base, last = history.iloc[0], history.iloc[-1]
    assert base["checkpoint"] == "base_policy"
    assert base["violation_rate_ci_low"] <= base["violation_rate"] <= base["violation_rate_ci_high"]
    assert last["violation_rate_ci_high"] < base["violation_rate_ci_low"]
    assert 0 < last["kl_to_base"] < 30


def test_history_has_one_row_per_round_with_every_signal(shaped_project):
    history = pd.read_parquet(_latest(shaped_project, "data/07_model_output/ppo_history.parquet"))
    assert history["round"].tolist() == [0, 1, 2]
    signals = {"reward_mean", "violation_rate", "kl_to_base", "probe_perplexity", "distinct_2",
               "length_mean", "eos_rate", "label_flip_rate", "reward_gain"}  # fmt: skip
    training = {"ppo/reward", "ppo/kl", "ppo/entropy", "ppo/approx_kl", "ppo/clipfrac", "ppo/value_loss",
                "ppo/explained_variance", "ppo/response_length", "ppo/eos_rate", "ppo/kl_coef"}  # fmt: skip
    assert signals | training <= set(history.columns)
    assert history.loc[1:, "healthy"].all() and history.loc[1:, list(training)].notna().all().all()


def test_every_round_is_a_checkpoint_and_the_policy_is_the_last_healthy_round(shaped_project):
    rounds = _latest(shaped_project, "data/06_models/ppo_round_policies")
    assert sorted(p.name for p in rounds.iterdir() if p.is_dir()) == ["round_001", "round_002"]
    policy = _latest(shaped_project, "data/06_models/ppo_policy")
    assert (policy / "COMPLETE").is_file()
    same = (policy / "model" / "model.safetensors").read_bytes() == (
        rounds / "round_002" / "model" / "model.safetensors"
    ).read_bytes()
    assert same
    assert json.loads((policy / "artifact.json").read_text())["lora"] is False


def test_the_gate_writes_its_decision_and_report_for_the_smoke_run(shaped_project):
    decision = json.loads(
        _latest(shaped_project, "data/08_reporting/gate_decision.json").read_text()
    )
    assert decision["decision"] in {
        "switch_to_refinement",
        "rollback_and_switch",
        "continue_shaping",
        "halt",
    }
    assert {
        "chaos_rate",
        "oscillation",
        "gain_per_round",
        "capability_loss",
        "hacking_signs",
    } <= set(decision["signals"])
    assert (
        decision["checkpoint_version"]
        == _latest(shaped_project, "data/06_models/ppo_round_policies").parent.name
    )
    report = _latest(shaped_project, "data/08_reporting/gate_report.md").read_text()
    assert f"`{decision['decision']}`" in report and decision["reasons"][0] in report


def _stages(project: Path) -> pd.DataFrame:
    table = pd.read_parquet(_latest(project, "data/08_reporting/stage_comparison.parquet"))
    assert table["policy"].tolist() == ["base", "ppo", "dpo"]
    return table.set_index("policy")


def test_stage_comparison_has_every_metric_with_its_intervals(shaped_project):
    table = _stages(shaped_project)
    required = {"reward_mean", "win_rate_vs_base", "violation_rate", "kl_to_base", "probe_perplexity",
                "distinct_2", "length_mean", "eos_rate", "violation_rate_ci_low", "violation_rate_ci_high",
                "violation_delta_vs_base_ci_low", "violation_delta_vs_base_ci_high",
                "violation_delta_vs_previous_ci_low", "violation_delta_vs_previous_ci_high",
                "reward_delta_vs_base_ci_low", "reward_delta_vs_base_ci_high"}  # fmt: skip
    assert required <= set(table.columns)
    base = table.loc["base"]
    assert base["win_rate_vs_base"] == 0.5  # ties count as half
    assert base["violation_delta_vs_base"] == 0 == base["violation_delta_vs_base_ci_high"]


def test_ppo_cuts_violations_against_base_beyond_the_paired_interval(shaped_project):
    ppo = _stages(shaped_project).loc["ppo"]
    # The 95% interval of PPO − base, paired over prompts, lies wholly below zero.
    assert ppo["violation_delta_vs_base_ci_high"] < 0
    assert ppo["reward_delta_vs_base_ci_low"] > 0


def test_dpo_violation_interval_against_ppo_overlaps_zero_or_lies_below(shaped_project):
    """DPO does not raise violations beyond noise: the paired interval of DPO − PPO includes
    zero or lies below it; its point estimate is not asserted, as DPO and PPO are close."""
    dpo = _stages(shaped_project).loc["dpo"]
    assert dpo["violation_delta_vs_previous_ci_low"] <= 0
    # And DPO keeps PPO's gain over base, beyond the paired interval.
    assert dpo["violation_delta_vs_base_ci_high"] < 0
    assert dpo["reward_delta_vs_base_ci_low"] > 0


def test_the_gate_switches_to_refinement_on_the_demo(shaped_project):
    gate = json.loads(_latest(shaped_project, "data/08_reporting/gate_decision.json").read_text())
    assert gate["decision"] == "switch_to_refinement" and gate["reasons"]


def test_dpo_history_charts_and_report_are_written(shaped_project):
    history = pd.read_parquet(_latest(shaped_project, "data/07_model_output/dpo_history.parquet"))
    assert {"loss", "reward_margin", "reward_accuracy", "kl_to_start"} <= set(history.columns)
    assert history["kl_to_start"].iloc[-1] > 0
    dpo = _latest(shaped_project, "data/06_models/dpo_policy")
    assert (dpo / "adapter" / "adapter_config.json").is_file()  # LoRA, saved with its base
    for chart in ("stage_metrics", "ppo_rounds", "reward_kl_frontier"):
        figure = json.loads(
            _latest(shaped_project, f"data/08_reporting/{chart}_chart.json").read_text()
        )
        assert figure["data"]
    sides = pd.read_parquet(_latest(shaped_project, "data/08_reporting/eval_generations.parquet"))
    assert {"base_response", "ppo_response", "dpo_response"} <= set(sides.columns)
    assert (
        "| dpo |" in _latest(shaped_project, "data/08_reporting/evaluation_report.md").read_text()
    )


def test_kedro_viz_build_previews_charts_tables_gate_and_models(shaped_project):
    import os
    import subprocess
    import sys

    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "1"}
    command = [sys.executable, "-m", "kedro", "viz", "build", "--include-previews"]
    completed = subprocess.run(
        command, cwd=shaped_project, env=env, capture_output=True, text=True, timeout=300
    )
    assert completed.returncode == 0 and "Failed" not in completed.stdout, completed.stdout[-2000:]
    main = json.loads((shaped_project / "build" / "api" / "main").read_text())
    tasks = {n["name"] for n in main["nodes"] if n["type"] == "task"}
    assert {
        "shape_policy_with_ppo",
        "apply_stability_gate",
        "refine_policy_with_dpo",
        "evaluate_stages",
    } <= tasks
    previews = {}
    for node_file in (shaped_project / "build" / "api" / "nodes").iterdir():
        node = json.loads(node_file.read_text())
        if node.get("preview") is not None:
            previews[node_file.name] = node.get("preview_type") or node.get("previewType")
    kinds = set(previews.values())
    assert {"PlotlyPreview", "TablePreview", "JSONPreview"} <= kinds, kinds


def test_notebook_loads_and_plots_the_smoke_outputs(shaped_project, monkeypatch, tmp_path):
    """In the kernel `kedro jupyter setup` installs (the one `kedro jupyter notebook` offers)."""
    import os
    import subprocess
    import sys

    import nbformat
    from nbclient import NotebookClient

    from tests.conftest import REPO_ROOT

    monkeypatch.setenv("ALIGNMENT_STAGES_PROJECT", str(shaped_project))
    monkeypatch.setenv("KEDRO_ENV", "smoke")
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "jupyter"))  # not the user's kernels
    setup = subprocess.run(
        [sys.executable, "-m", "kedro", "jupyter", "setup"], cwd=shaped_project,
        env={**os.environ, "KEDRO_DISABLE_TELEMETRY": "1"}, capture_output=True, text=True,
    )  # fmt: skip
    assert setup.returncode == 0, setup.stderr[-2000:]
    notebook = nbformat.read(REPO_ROOT / "notebooks" / "stages_side_by_side.ipynb", as_version=4)
    NotebookClient(
        notebook,
        timeout=300,
        kernel_name="kedro_alignment_stages",
        resources={"metadata": {"path": str(shaped_project)}},
    ).execute()
    outputs = [
        o for cell in notebook.cells if cell.cell_type == "code" for o in cell.get("outputs", [])
    ]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    text = "".join(o.get("text", "") for o in outputs)
    assert "Gate: " in text
    assert sum("application/vnd.plotly.v1+json" in o.get("data", {}) for o in outputs) == 2


# Float summation order, far below any metric's noise. One answer judged otherwise moves a
# violation rate by 1 / samples, 0.004 at the smoke run's 240.
SAME_RUN_TOLERANCE = {"rtol": 1e-4, "atol": 1e-5}


def test_the_same_seed_run_again_gives_the_same_stage_comparison(shaped_project, tmp_path_factory):
    """Reproducible on whatever machine runs the suite: the smoke run's stages from PPO on,
    started again in this session from the same seed on a copy of the first run's data, base
    policy and reward models, give the same stage comparison. The stages before PPO repeat on
    their own (test_base_and_reward.py::test_same_seed_same_reward_metrics, in the `test`
    environment), so they are not run a second time here. No numbers are committed: another
    CPU's kernels round differently, a sampled token flips and training carries the difference
    on (on 2026-12-02 one CI machine's base row moved by 1.4% and its DPO KL from 6.19 to 4.80).
    The outcomes themselves are asserted as directions beyond their intervals, above."""
    again = tmp_path_factory.mktemp("again") / "project"
    shutil.copytree(shaped_project, again, symlinks=True)
    # The comparison must be this run's own, not the copied one read back.
    shutil.rmtree(again / "data/08_reporting/stage_comparison.parquet")
    run_smoke(again, from_nodes=["shape_policy_with_ppo"])
    rounds = sorted((again / "data/06_models/ppo_round_policies").iterdir())
    assert len(rounds) == 2, "PPO wrote no rounds of its own"
    first, second = _stages(shaped_project), _stages(again)
    pd.testing.assert_frame_equal(second, first, check_exact=False, **SAME_RUN_TOLERANCE)


def _history_at_sampling_seed(catalog, seed: int) -> pd.DataFrame:
    """`ppo_history`'s gate columns, re-evaluated from the saved rounds with another
    evaluation-sampling seed (what ppo_shaping's RoundRecorder does, round by round)."""
    from alignment_stages.evaluation.protocol import EvalProtocol
    from alignment_stages.judges.config import JudgesParams
    from alignment_stages.stages.ppo_shaping import ShapingStageParams

    base, reward_model = catalog.load("base_policy"), catalog.load("reward_model")
    rounds = catalog.load("ppo_round_policies")
    judges = JudgesParams.model_validate(catalog.load("params:behaviour_judges"))
    shaping = ShapingStageParams.model_validate(catalog.load("params:ppo_shaping"))
    protocol = EvalProtocol.from_config(
        base, reward_model, judges, catalog.load("eval_prompts"), catalog.load("capability_probe"),
        shaping.eval.model_copy(update={"seed": seed}),
    )  # fmt: skip
    rows, labels = [], None
    for index, (name, policy) in enumerate(
        [("base_policy", base)] + [(n, rounds[n]()) for n in sorted(rounds)]
    ):
        evaluated = protocol.evaluate(policy, labels)
        labels = evaluated.labels
        rows.append({"round": index, "checkpoint": name, "healthy": True, **evaluated.metrics})
    return pd.DataFrame(rows)  # fmt: skip


def test_the_gate_decision_holds_for_five_evaluation_sampling_seeds(shaped_project):
    """The demo's switch does not hang on one evaluation sample: the saved rounds re-evaluated
    with five other sampling seeds give the same decision."""
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    from alignment_stages.gate.config import StabilityGateParams
    from alignment_stages.gate.rules import decide

    bootstrap_project(shaped_project)
    with KedroSession.create(project_path=shaped_project, env="smoke") as session:
        catalog = session.load_context().catalog
    gate = StabilityGateParams.model_validate(catalog.load("params:stability_gate"))
    decisions = {
        seed: decide(_history_at_sampling_seed(catalog, seed), gate).decision for seed in range(5)
    }
    assert set(decisions.values()) == {"switch_to_refinement"}, decisions
