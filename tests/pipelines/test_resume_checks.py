"""A killed PPO run, rerun with its run version, continues only on what it started with: the
same `ppo_shaping` parameters and the same version of every input. Tracking is on, as it is by
default, so the project's refusal is what the user sees, not MLflow's (issue 28, cases 2, 10)."""

from __future__ import annotations

import pytest
from kedro.framework.project import settings
from kedro.framework.startup import bootstrap_project
from mlflow.tracking import MlflowClient

import alignment_stages.ppo.rounds as rounds
from alignment_stages.demo.generate import write_demo_files
from alignment_stages.ppo.checkpoint import ResumeMismatchError, RoundCheckpoints
from alignment_stages.run_identity import RUN_VERSION_VARIABLE
from alignment_stages.tracking import RUN_VERSION_TAG
from tests.conftest import make_project, set_tracking

RUN_VERSION = "2001-01-01T00.00.00.000Z"
TINY_PPO = {
    "rounds": 2, "updates_per_round": 1,
    "ppo": {"rollout_batch_size": 8, "response_length": 8, "ppo_epochs": 1, "num_minibatches": 1},
    "eval": {"max_new_tokens": 8, "max_prompts": 8},
}  # fmt: skip


def _run(project, pipeline, params=None, run_version=None, **run_args):
    with pytest.MonkeyPatch.context() as env:
        if run_version:
            env.setenv(RUN_VERSION_VARIABLE, run_version)
        else:
            env.delenv(RUN_VERSION_VARIABLE, raising=False)
        bootstrap_project(project)
        with settings.SESSION_CLASS.create(project_path=project, env="test", runtime_params=params) as session:  # fmt: skip
            session.run(pipeline_names=[pipeline], **run_args)


def _killed_in_round_2(run_updates):
    def train(trainer, batches, params, count, **kwargs):
        if kwargs["label"] == "ppo round 2":
            raise RuntimeError("killed in round 2")
        return run_updates(trainer, batches, params, count, **kwargs)

    return train


def _versions(project, name):
    return sorted(p.name for p in (project / "data" / "06_models" / name).iterdir())


def _mlflow_runs(project, run_version):
    client = MlflowClient(f"sqlite:///{project}/mlruns/mlflow.db")
    experiment = client.get_experiment_by_name("alignment_stages")
    return client.search_runs(
        [experiment.experiment_id], filter_string=f"tags.{RUN_VERSION_TAG} = '{run_version}'"
    )


@pytest.fixture(scope="module")
def killed_project(tmp_path_factory):
    """Curation, base and reward models, then a pinned PPO run, tracked, killed in its second
    round. The stages before PPO are set-up and run untracked (tracking triples their time)."""
    project = make_project(tmp_path_factory.mktemp("resume"), tracking=False)
    write_demo_files(project / "data" / "01_raw" / "preferences")
    for pipeline in ("data_curation", "base_model", "safety_judge", "reward_model"):
        _run(project, pipeline)
    set_tracking(project, enabled=True)  # the default from here on
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(rounds, "run_updates", _killed_in_round_2(rounds.run_updates))
        with pytest.raises(RuntimeError, match="killed in round 2"):
            _run(project, "ppo_shaping", {"ppo_shaping": TINY_PPO}, RUN_VERSION)
    folder = project / "data" / "06_models" / "ppo_checkpoints" / RUN_VERSION / "ppo_checkpoints"
    assert RoundCheckpoints(folder).completed_rounds() == [1]
    return project


def _no_training(*args, **kwargs):
    raise AssertionError("a refused resume trained")


def test_a_resume_with_a_changed_learning_rate_is_refused_before_mlflow_logs(killed_project):
    (before,) = _mlflow_runs(killed_project, RUN_VERSION)
    changed = {"ppo_shaping": {**TINY_PPO, "ppo": {**TINY_PPO["ppo"], "learning_rate": 0.003}}}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(rounds, "run_updates", _no_training)
        with pytest.raises(ResumeMismatchError, match=r"ppo\.learning_rate differ"):
            _run(killed_project, "ppo_shaping", changed, RUN_VERSION)
    (after,) = _mlflow_runs(killed_project, RUN_VERSION)  # no second run, no param rewritten
    assert after.info.run_id == before.info.run_id
    assert after.data.params["ppo_shaping.ppo.learning_rate"] == "0.0001"


def test_a_resume_on_a_newer_base_policy_is_refused_naming_both_versions(killed_project):
    (first_base,) = _versions(killed_project, "base_policy")
    _run(killed_project, "base_model", {"base_model": {"seed": 1}})  # a new base, now "latest"
    first_base, new_base = _versions(killed_project, "base_policy")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(rounds, "run_updates", _no_training)
        with pytest.raises(ResumeMismatchError) as refused:
            _run(killed_project, "ppo_shaping", {"ppo_shaping": TINY_PPO}, RUN_VERSION)
    message = str(refused.value)
    assert f"base_policy was {first_base} when round 1 was written and is {new_base} now" in message  # fmt: skip
    assert f"--load-versions base_policy:{first_base}" in message

    # Pinned as the message says, the run resumes: round 2 is trained on the first base.
    _run(killed_project, "ppo_shaping", {"ppo_shaping": TINY_PPO}, RUN_VERSION,
         load_versions={"base_policy": first_base})  # fmt: skip
    folder = killed_project / "data" / "06_models" / "ppo_checkpoints" / RUN_VERSION / "ppo_checkpoints"  # fmt: skip
    assert RoundCheckpoints(folder).completed_rounds() == [1, 2]


def test_a_raw_checkpoint_without_a_pretrained_base_is_refused_before_any_node(tmp_path):
    """evaluation.raw_checkpoint evaluates base_model.pretrained as loaded; the demo's tiny base
    has none. The run stops before curation, not after an hour of training."""
    from kedro.framework.session import KedroSession

    project = make_project(tmp_path)
    write_demo_files(project / "data" / "01_raw" / "preferences")
    bootstrap_project(project)
    with KedroSession.create(
        project_path=project, env="smoke", runtime_params={"evaluation": {"raw_checkpoint": True}}
    ) as session:
        with pytest.raises(ValueError, match="raw_checkpoint needs base_model.pretrained"):
            session.run(pipeline_names=["full_alignment"])
    assert not (project / "data" / "05_model_input").exists()
    assert not (project / "data" / "03_primary").exists()
