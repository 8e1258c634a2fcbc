"""Algorithms live in plain modules: only `pipelines/`, `datasets/` and the Kedro glue modules
(registry, settings, the session class, the MLflow hook, the CLI entry point and `kedro` command
overrides) may import Kedro."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "alignment_stages"
KEDRO_ALLOWED = {
    "pipelines",
    "datasets",
    "mlflow_hook.py",
    "pipeline_registry.py",
    "settings.py",
    "session.py",
    "__main__.py",
    "cli.py",
}


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_plain_modules_do_not_import_kedro():
    offenders = [
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if path.relative_to(PACKAGE).parts[0] not in KEDRO_ALLOWED
        and {"kedro", "kedro_datasets"} & _imports(path)
    ]
    assert offenders == []
    assert (PACKAGE / "curation" / "curate.py").exists()  # the scan did look at real modules
    assert (PACKAGE / "run_identity.py").exists()  # the run identity rules stay Kedro-free
