"""Checks every run gets before its first node: unknown `--params` blocks, ParallelRunner with
in-memory handoffs, and mistyped pipeline names."""

from __future__ import annotations

import pytest
from kedro.framework.session.session import KedroSessionError
from kedro.framework.startup import bootstrap_project
from kedro.runner import ParallelRunner
from kedro.validation.exceptions import ParameterValidationError

from alignment_stages.parameters import UnknownParameterError, check_override_blocks
from alignment_stages.session import RunIdentitySession


def _run(project, runtime_params=None, **run_args):
    bootstrap_project(project)
    with RunIdentitySession.create(project_path=project, runtime_params=runtime_params) as session:
        return session.run(**run_args)


def test_a_mistyped_block_in_params_is_refused_naming_the_closest(tmp_project):
    with pytest.raises(
        UnknownParameterError, match=r"data_curaton.max_bad_fraction: .*'data_curation'"
    ):
        _run(
            tmp_project,
            {"data_curaton": {"max_bad_fraction": 0.0}},
            pipeline_names=["data_curation"],
        )
    assert not (tmp_project / "data" / "08_reporting").exists()


def test_a_block_of_another_pipeline_is_accepted():
    check_override_blocks({"ppo_shaping": {"rounds": 1}}, {"ppo_shaping", "data_curation"})
    with pytest.raises(UnknownParameterError, match="the blocks are"):
        check_override_blocks({"zzz": 1}, {"ppo_shaping"})


def test_parallel_runner_is_refused_up_front_for_in_memory_models(tmp_project):
    with pytest.raises(
        KedroSessionError, match=r"dpo_start_policy, reward_model_candidate .*SequentialRunner"
    ):
        _run(tmp_project, pipeline_names=["full_alignment"], runner=ParallelRunner())


def test_a_mistyped_pipeline_name_gets_kedros_suggestion(tmp_project):
    with pytest.raises(ValueError, match=r"(?s)'full_aligment'.*Did you mean.*full_alignment"):
        _run(tmp_project, pipeline_names=["full_aligment"])


@pytest.mark.parametrize("value", ["inf", "-inf", "nan", float("inf"), float("nan")])
def test_a_parameter_that_is_not_finite_is_refused_naming_the_key(tmp_project, value):
    with pytest.raises(ParameterValidationError, match=r"(?s)ppo_shaping.*ppo\.kl_coef.*finite"):
        _run(tmp_project, {"ppo_shaping": {"ppo": {"kl_coef": value}}}, pipeline_names=["ppo_shaping"])  # fmt: skip
    assert not (tmp_project / "data" / "06_models").exists()  # refused before any node


def test_every_parameter_block_refuses_non_finite_numbers():
    # Each of these passes its own bound at infinity (`gt=0` and no upper bound).
    from alignment_stages.dpo.config import DPORefinementParams
    from alignment_stages.ppo.config import PPOShapingParams

    with pytest.raises(ValueError, match=r"(?s)ppo\.kl_target.*finite"):
        PPOShapingParams.model_validate({"ppo": {"kl_target": "inf"}})
    with pytest.raises(ValueError, match=r"(?s)beta.*finite"):
        DPORefinementParams.model_validate({"beta": float("inf")})
