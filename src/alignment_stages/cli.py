"""Project CLI commands. Kedro lets a project's `cli.py` override a plugin's command of the same
name (built-in < plugins < cli.py), and this one does so for `kedro airflow create` only.

kedro-airflow's default template renders `schedule: null` from conf/base/airflow.yml as the
string "None", which Airflow 3 rejects as a cron expression, and it gives every pipeline the same
dag_id. So the plain `kedro airflow create` uses the project's template and groups the nodes a
MemoryDataset joins into one task, exactly as `make dags` does; `--jinja-file` and `--group-by`
still choose otherwise.
"""

from __future__ import annotations

import copy
from pathlib import Path

import click
from kedro.utils import find_kedro_project
from kedro_airflow.plugin import create as kedro_airflow_create

TEMPLATE = Path("deploy") / "airflow" / "dag_template.j2"


def project_template() -> str:
    """The project's DAG template, found from the working directory as Kedro finds the project."""
    project = find_kedro_project(Path.cwd()) or Path.cwd()
    return str(project / TEMPLATE)


def _with_defaults(command: click.Command, **defaults) -> click.Command:
    """A copy of `command` whose options named in `defaults` default to those values."""
    command = copy.copy(command)
    command.params = [copy.copy(param) for param in command.params]
    for param in command.params:
        if param.name in defaults:
            param.default = defaults[param.name]
    return command


@click.group(name="alignment_stages")
def cli() -> None:
    """Alignment Stages' own versions of plugin commands."""


@cli.group()
def airflow() -> None:
    """Airflow DAGs from the project's template."""


airflow.add_command(
    _with_defaults(kedro_airflow_create, jinja_file=project_template, node_grouping="memory"),
    name="create",
)
