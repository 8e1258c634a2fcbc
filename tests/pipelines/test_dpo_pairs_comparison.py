"""`dpo_pairs_comparison` on the smoke run: DPO from the same start on the other pair source
(the smoke run settled on the curated pairs, so the second run uses the start policy's own),
and both DPO policies, the start and the base evaluated on the same prompts."""

from __future__ import annotations

import pandas as pd
import pytest
from kedro.framework.session import KedroSession

from tests.pipelines.conftest import latest


@pytest.fixture(scope="module")
def compared(shaped_project):
    with KedroSession.create(project_path=shaped_project, env="smoke") as session:
        session.run(pipeline_names=["dpo_pairs_comparison"])
    return shaped_project


def test_both_dpo_runs_start_from_the_gates_policy_and_are_compared_with_an_interval(compared):
    table = pd.read_parquet(latest(compared, "data/08_reporting/dpo_pairs_comparison.parquet"))
    assert table["policy"].tolist() == ["base", "start", "dpo_curated", "dpo_onpolicy"]
    assert table.set_index("policy")["pairs"].to_dict() == {
        "base": "",
        "start": "",
        "dpo_curated": "curated",
        "dpo_onpolicy": "onpolicy",
    }
    last = table.iloc[-1]
    assert (last["violation_delta_vs_other_dpo_ci_low"] <= last["violation_delta_vs_other_dpo"]
            <= last["violation_delta_vs_other_dpo_ci_high"])  # fmt: skip
    assert table["violation_delta_vs_other_dpo"].iloc[:-1].isna().all()
    for column in ("harmful_complied", "benign_refused", "violation_rate"):
        assert table[column].between(0, 1).all()
        assert (table[f"{column}_ci_low"] <= table[column]).all()
    # The second run trained on the start policy's own answers, and its policy differs.
    history = pd.read_parquet(
        latest(compared, "data/07_model_output/dpo_comparison_history.parquet")
    )
    assert history["pairs"].iloc[-1] == "onpolicy" and history["onpolicy_pairs_count"].iloc[-1] > 0
    assert table.loc[2, "kl_to_base"] != table.loc[3, "kl_to_base"]
    report = latest(compared, "data/08_reporting/dpo_pairs_comparison_report.md").read_text()
    assert "DPO on `onpolicy` pairs against DPO on `curated` pairs" in report


def test_a_comparison_against_the_pairs_already_used_fails_before_training(shaped_project):
    with KedroSession.create(project_path=shaped_project, env="smoke",
                             runtime_params={"dpo_pairs_comparison": {"against": "curated"}}
                             ) as session:  # fmt: skip
        with pytest.raises(Exception, match="the pairs dpo_refinement already settled on"):
            session.run(pipeline_names=["dpo_pairs_comparison"])
