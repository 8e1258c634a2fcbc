"""The committed Airflow DAGs: up to date, importable, and wired exactly as the Kedro pipelines."""

from __future__ import annotations

import difflib
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
from kedro.framework.session import KedroSession
from kedro.io import MemoryDataset

from tests_airflow.conftest import DAGS_FOLDER, REPO_ROOT, TEMPLATE, registered_pipelines

PIPELINES = registered_pipelines()


def _dag_id(pipeline_name: str) -> str:
    return f"alignment_stages_{pipeline_name}"


def _node_tasks(dag) -> dict[str, str]:
    """Kedro node name → the task that runs it, read from each task's `node_names` argument."""
    node_tasks: dict[str, str] = {}
    for task in dag.tasks:
        for node_name in task.op_kwargs["node_names"]:
            assert node_name not in node_tasks, f"{node_name} runs in two tasks"
            node_tasks[node_name] = task.task_id
    return node_tasks


def test_committed_dags_equal_freshly_generated_ones(tmp_path):
    script = REPO_ROOT / "deploy" / "airflow" / "create_dags.py"
    subprocess.run([sys.executable, str(script), str(tmp_path)], check=True, capture_output=True)
    fresh = {p.name: p.read_bytes() for p in tmp_path.glob("*.py")}
    committed = {p.name: p.read_bytes() for p in DAGS_FOLDER.glob("*.py")}
    assert sorted(committed) == sorted(fresh), "run `make dags` and commit airflow_dags/"
    stale = [name for name in sorted(fresh) if fresh[name] != committed[name]]
    first_difference = "".join(
        difflib.unified_diff(
            committed[stale[0]].decode().splitlines(keepends=True),
            fresh[stale[0]].decode().splitlines(keepends=True),
            f"committed/{stale[0]}",
            f"generated/{stale[0]}",
        )
        if stale
        else []
    )
    assert stale == [], f"run `make dags` and commit airflow_dags/:\n{first_difference}"


def test_every_dag_imports_with_its_own_id_and_one_active_run(dag_bag):
    assert dag_bag.import_errors == {}
    files = sorted(DAGS_FOLDER.glob("*_dag.py"))
    assert len(dag_bag.dags) == len(files) == len(PIPELINES)  # one dag_id per file: no clashes
    assert sorted(dag_bag.dags) == sorted(_dag_id(name) for name in PIPELINES)
    for dag in dag_bag.dags.values():
        assert dag.max_active_runs == 1, dag.dag_id
        assert dag.catchup is False, dag.dag_id


@pytest.mark.parametrize("pipeline_name", sorted(PIPELINES))
def test_task_dependencies_equal_the_pipeline_node_dependencies(dag_bag, pipeline_name):
    pipeline, dag = PIPELINES[pipeline_name], dag_bag.dags[_dag_id(pipeline_name)]
    node_tasks = _node_tasks(dag)
    assert sorted(node_tasks) == sorted(node.name for node in pipeline.nodes)
    for task in dag.tasks:  # the template's task id: the joined names of the nodes it runs
        assert task.task_id == "_".join(task.op_kwargs["node_names"])

    expected = {
        (node_tasks[parent.name], node_tasks[child.name])
        for child, parents in pipeline.node_dependencies.items()
        for parent in parents
        if node_tasks[parent.name] != node_tasks[child.name]
    }
    actual = {(upstream, task.task_id) for task in dag.tasks for upstream in task.upstream_task_ids}
    assert actual == expected


def test_only_saved_datasets_cross_from_one_task_to_another(dag_bag):
    """Each task is its own process: a MemoryDataset handed to another task would be lost."""
    with KedroSession.create(project_path=REPO_ROOT) as session:
        catalog = session.load_context().catalog
    for pipeline_name, pipeline in PIPELINES.items():
        node_tasks = _node_tasks(dag_bag.dags[_dag_id(pipeline_name)])
        for child, parents in pipeline.node_dependencies.items():
            for parent in parents:
                if node_tasks[parent.name] == node_tasks[child.name]:
                    continue
                for name in set(parent.outputs) & set(child.inputs):
                    dataset = catalog.get(name)
                    assert dataset is not None and not isinstance(dataset, MemoryDataset), (
                        f"{pipeline_name}: {name} goes from task {node_tasks[parent.name]} to "
                        f"{node_tasks[child.name]} in memory"
                    )


def _load_dag_module(path: Path):
    spec = importlib.util.spec_from_file_location(f"dag_module_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    "value, message",
    [
        (None, "ALIGNMENT_STAGES_PROJECT_PATH is not set"),
        ("", "ALIGNMENT_STAGES_PROJECT_PATH is not set"),
        ("/nonexistent/alignment-stages", "is not an Alignment Stages project directory"),
    ],
)
def test_tasks_need_a_valid_project_path(monkeypatch, value, message):
    module = _load_dag_module(DAGS_FOLDER / "alignment_stages_base_model_dag.py")
    if value is None:
        monkeypatch.delenv(module.PROJECT_PATH_VARIABLE, raising=False)
    else:
        monkeypatch.setenv(module.PROJECT_PATH_VARIABLE, value)
    with pytest.raises(RuntimeError, match=message):
        module.project_path()
    monkeypatch.setenv(module.PROJECT_PATH_VARIABLE, str(REPO_ROOT))
    assert module.project_path() == REPO_ROOT


def test_training_tasks_go_to_the_configured_queue_and_pool(tmp_path):
    from airflow.dag_processing.dagbag import DagBag

    command = [
        *(sys.executable, "-m", "kedro", "airflow", "create", "--pipelines", "reward_model"),
        *("--group-by", "memory", "--jinja-file", str(TEMPLATE), "--target-dir", str(tmp_path)),
        *("--params", "training_queue=gpu,training_pool=gpu_slots"),
    ]
    subprocess.run(command, cwd=REPO_ROOT, check=True, capture_output=True)
    bag = DagBag(dag_folder=tmp_path)
    assert bag.import_errors == {}
    tasks = bag.dags[_dag_id("reward_model")].tasks
    assert len(tasks) == 2  # the base's on-policy pairs, then the reward model's training
    assert {(task.queue, task.pool) for task in tasks} == {("gpu", "gpu_slots")}


@pytest.mark.parametrize("pipelines", [[], ["--pipelines", "data_curation,stability_gate"]])
def test_the_plain_kedro_airflow_create_makes_dags_that_import(tmp_path, pipelines):
    """`kedro airflow create` with no template or grouping flags, as a user types it, uses the
    project's template (src/alignment_stages/cli.py): Airflow 3 imports what it writes, with
    no schedule and the same task grouping as `make dags`."""
    from airflow.dag_processing.dagbag import DagBag

    command = [sys.executable, "-m", "kedro", "airflow", "create", "--target-dir", str(tmp_path)]
    completed = subprocess.run(
        [*command, *pipelines], cwd=REPO_ROOT, capture_output=True, text=True
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    bag = DagBag(dag_folder=tmp_path)
    assert bag.import_errors == {}
    names = pipelines[1].split(",") if pipelines else ["default"]
    assert sorted(bag.dags) == sorted(_dag_id(name) for name in names)
    for dag in bag.dags.values():
        assert type(dag.timetable).__name__ == "NullTimetable" and dag.max_active_runs == 1
    for name in set(names) & set(PIPELINES):
        committed = (DAGS_FOLDER / f"alignment_stages_{name}_dag.py").read_text()
        assert (tmp_path / f"alignment_stages_{name}_dag.py").read_text() == committed
