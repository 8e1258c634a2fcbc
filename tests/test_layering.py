"""The package order of docs/architecture.md holds in the code, and algorithms stay Kedro-free.

Algorithms live in plain modules: only `pipelines/`, `datasets/` and the Kedro glue modules
(registry, settings, the session class, the MLflow hook, the CLI entry point and `kedro` command
overrides) may import Kedro. Every import between the project's packages points down the
layers drawn in docs/architecture.md ("## Layers"), and no two packages import each other.
"""

import ast
import re
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "alignment_stages"
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
MAX_LINES = 400


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


def documented_layers(text: str) -> list[set[str]]:
    """The rows of the picture under "## Layers", top first: each a set of unit names."""
    section = text.split("## Layers", 1)[1]
    picture = re.search(r"```text\n(.*?)```", section, re.S).group(1)
    rows = [line.split() for line in picture.splitlines()]
    return [{name.rstrip("/") for name in row} for row in rows if row and row != ["│"]]


def _unit(module: str) -> str | None:
    """The top-level package or module of an `alignment_stages` import, else None."""
    parts = module.split(".")
    return parts[1] if parts[0] == "alignment_stages" and len(parts) > 1 else None


def project_imports(package: Path) -> dict[tuple[str, str], set[str]]:
    """(importing unit, imported unit) → the files where it happens; relative imports too."""
    edges = defaultdict(set)
    for path in package.rglob("*.py"):
        relative = path.relative_to(package)
        source = relative.parts[0].removesuffix(".py")
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [_unit(alias.name) for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level:
                here = ["alignment_stages", *relative.parent.parts]
                base = here[: len(here) - node.level + 1]
                named = [node.module] if node.module else [a.name for a in node.names]
                targets = [_unit(".".join(base + n.split("."))) for n in named]
            elif isinstance(node, ast.ImportFrom) and node.module:
                targets = [_unit(node.module)]
            else:
                continue
            for target in targets:
                if target and target != source:
                    edges[(source, target)].add(str(relative))
    return edges


def _units(package: Path) -> set[str]:
    return {p.name.removesuffix(".py") for p in package.iterdir()
            if p.suffix == ".py" or (p / "__init__.py").exists()} - {"__init__"}  # fmt: skip


@pytest.fixture(scope="module")
def layers() -> list[set[str]]:
    return documented_layers((ROOT / "docs" / "architecture.md").read_text())


def test_every_package_has_exactly_one_documented_layer(layers):
    placed = [name for row in layers for name in row]
    assert len(placed) == len(set(placed)), "a unit is drawn in two layers"
    assert set(placed) == _units(PACKAGE)


def test_every_import_points_down_the_documented_layers(layers):
    level = {name: index for index, row in enumerate(layers) for name in row}
    upward = {
        f"{source} -> {target} ({', '.join(sorted(files))})"
        for (source, target), files in project_imports(PACKAGE).items()
        if level[target] < level[source] or (level[target] == level[source] and level[source] > 0)
    }
    assert upward == set()


def test_no_two_packages_import_each_other_even_within_the_top_layer():
    edges = project_imports(PACKAGE)
    graph: dict[str, set[str]] = {}
    for source, target in edges:
        graph.setdefault(source, set()).add(target)

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        return any(
            nxt == goal or (nxt not in seen and reaches(nxt, goal, seen | {nxt}))
            for nxt in graph.get(start, ())
        )

    assert sorted(s for s in graph if reaches(s, s, {s})) == []


def test_the_checks_catch_an_upward_import_and_a_cycle(tmp_path, layers):
    """The scan sees absolute and relative imports: a fake `ppo` importing `evaluation` is
    upward, and `evaluation` importing it back closes a cycle."""
    fake = tmp_path / "alignment_stages"
    for unit, source in {
        "ppo": "from alignment_stages.evaluation.protocol import EvalProtocol\n",
        "evaluation": "from ..ppo import rounds\n",
    }.items():
        (fake / unit).mkdir(parents=True)
        (fake / unit / "__init__.py").write_text("")
        (fake / unit / "mod.py").write_text(source)
    edges = project_imports(fake)
    assert set(edges) == {("ppo", "evaluation"), ("evaluation", "ppo")}
    level = {name: index for index, row in enumerate(layers) for name in row}
    assert level["evaluation"] < level["ppo"]  # so ppo -> evaluation is the upward one


def test_no_source_file_is_over_400_lines():
    long = {
        str(path.relative_to(PACKAGE)): n
        for path in PACKAGE.rglob("*.py")
        if (n := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}
