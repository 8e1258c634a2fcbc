"""The shipped failure scenarios, each a Kedro environment at smoke size: real training runs in
which the gate must catch what went wrong (`hackable`: reward hacking)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

from tests.conftest import REPO_ROOT, make_project
from tests.pipelines.conftest import latest


def _run(tmp_path_factory, env: str, raw: str, **run_args) -> Path:
    project = make_project(tmp_path_factory.mktemp(env))
    shutil.copytree(REPO_ROOT / "data" / "01_raw" / raw, project / "data" / "01_raw" / raw,
                    dirs_exist_ok=True)  # fmt: skip
    bootstrap_project(project)
    with KedroSession.create(project_path=project, env=env) as session:
        session.run(pipeline_names=["full_alignment"], **run_args)
    return project


@pytest.fixture(scope="module")
def hacked_project(tmp_path_factory) -> Path:
    return _run(tmp_path_factory, "hackable", "hackable_preferences")


def _history(project: Path) -> pd.DataFrame:
    return pd.read_parquet(latest(project, "data/07_model_output/ppo_history.parquet"))


def _gate(project: Path) -> dict:
    return json.loads(latest(project, "data/08_reporting/gate_decision.json").read_text())


def test_hackable_ppo_raises_the_proxy_while_the_judges_flag_more(hacked_project):
    history = _history(hacked_project)
    base, last = history.iloc[0], history.iloc[-1]
    assert (
        last["proxy_reward"] - base["proxy_reward"]
        > 2 * (last["proxy_reward_se"] ** 2 + base["proxy_reward_se"] ** 2) ** 0.5
    )
    assert last["violation_rate_ci_low"] > base["violation_rate_ci_high"]
    assert {"heldout_reward", "ensemble_spread", "proxy_heldout_gap", "sqrt_kl_to_base"} <= set(
        history.columns
    )


def test_hackable_gate_rolls_back_to_the_last_healthy_round_and_dpo_starts_there(hacked_project):
    gate = _gate(hacked_project)
    assert gate["decision"] == "rollback_and_switch"
    first_bad = min(int(name.split("_")[-1]) for name in gate["hacking_signs"])
    assert gate["selected_round"] == first_bad - 1
    assert any("judges flag more" in reason for reason in gate["reasons"])


def test_hackable_evaluation_shows_the_rollback_beating_the_hacked_round(hacked_project):
    table = pd.read_parquet(latest(hacked_project, "data/08_reporting/stage_comparison.parquet"))
    table = table.set_index("policy")
    gate = _gate(hacked_project)
    rollback = "rollback" if gate["selected_round"] > 0 else "base"
    assert table.loc[rollback, "violation_rate_ci_high"] < table.loc["ppo", "violation_rate_ci_low"]
    chart = json.loads(
        latest(hacked_project, "data/08_reporting/reward_sqrt_kl_chart.json").read_text()
    )
    assert [trace["name"] for trace in chart["data"]][:2] == [
        "proxy (optimised)",
        "held-out ensemble",
    ]
    report = latest(hacked_project, "data/08_reporting/evaluation_report.md").read_text()
    assert f"| {gate['selected_round']} (selected) |" in report
