"""Regenerate the Airflow DAGs: one per registered pipeline except `__default__`.

`make dags` runs this into `airflow_dags/`; the Airflow tests run it into a temporary folder and
compare. `__default__` is left out because it is `full_alignment` under another name.

    python deploy/airflow/create_dags.py [TARGET_DIR] [--env ENV]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = Path(__file__).resolve().parent / "dag_template.j2"
DEFAULT_TARGET = PROJECT_ROOT / "airflow_dags"


def registered_pipelines() -> list[str]:
    from kedro.framework.project import pipelines
    from kedro.framework.startup import bootstrap_project

    bootstrap_project(PROJECT_ROOT)
    return sorted(name for name in pipelines if name != "__default__")


def create_dags(target: Path, env: str = "local") -> list[Path]:
    target.mkdir(parents=True, exist_ok=True)
    for stale in target.glob("*_dag.py"):  # a pipeline that was removed loses its DAG too
        stale.unlink()
    command = [
        *(sys.executable, "-m", "kedro", "airflow", "create"),
        *("--pipelines", ",".join(registered_pipelines())),
        # Nodes joined by a MemoryDataset must share a process, so they share a task.
        *("--group-by", "memory"),
        *("--jinja-file", str(TEMPLATE)),
        *("--target-dir", str(target.resolve())),
        *("--env", env),
    ]
    environment = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "1"}
    subprocess.run(command, cwd=PROJECT_ROOT, env=environment, check=True)
    return sorted(target.glob("*_dag.py"))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("target", nargs="?", type=Path, default=DEFAULT_TARGET)
    parser.add_argument("--env", default="local", help="Kedro environment the DAGs are made for")
    args = parser.parse_args(argv)
    create_dags(args.target, args.env)


if __name__ == "__main__":
    main()
