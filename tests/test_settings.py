"""Parameter merging: an env file or `--params` changes exactly the keys it names, in every
shipped environment, and the pydantic defaults are conf/base's values."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from kedro.config import OmegaConfigLoader
from kedro.framework.project import find_pipelines, settings
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project
from kedro.validation.type_extractor import TypeExtractor

from tests.conftest import REPO_ROOT

ENVS = sorted(
    p.name for p in (REPO_ROOT / "conf").iterdir() if p.is_dir() and any(p.glob("parameters*"))
)


@pytest.fixture(scope="module")
def models():
    bootstrap_project(REPO_ROOT)
    return TypeExtractor(find_pipelines(raise_errors=True)).extract_types_from_pipelines()


def _flat(value, prefix=""):
    if isinstance(value, dict) and value:
        return {
            k: v for key, child in value.items() for k, v in _flat(child, f"{prefix}{key}.").items()
        }
    return {prefix.rstrip("."): value}


def _effective(models, conf: Path, env: str, runtime_params=None) -> dict:
    args = {k: v for k, v in settings.CONFIG_LOADER_ARGS.items() if k != "default_run_env"}
    params = OmegaConfigLoader(str(conf), env=env, runtime_params=runtime_params, **args)[
        "parameters"
    ]
    return _flat({key: model.model_validate(params[key]).model_dump(mode="json")
                  for key, model in models.items()})  # fmt: skip


def test_every_default_is_the_base_value(models):
    base = _effective(models, REPO_ROOT / "conf", "base")
    for key, model in models.items():
        try:
            defaults = _flat({key: model().model_dump(mode="json")})
        except ValueError:  # a block without defaults (behaviour_judges needs a judge named)
            continue
        assert defaults == {k: v for k, v in base.items() if k.startswith(f"{key}.")}, key


@pytest.mark.parametrize("env", ENVS)
def test_an_env_file_changes_exactly_the_keys_it_names(models, env):
    assert {"base", "smoke", "test"} <= set(ENVS)
    named = {}
    for path in (REPO_ROOT / "conf" / env).glob("parameters*"):
        named.update(_flat(yaml.safe_load(path.read_text())))
    base = _effective(models, REPO_ROOT / "conf", "base")
    merged = _effective(models, REPO_ROOT / "conf", env)
    changed = {k for k in merged if merged[k] != base.get(k)}
    # A block base leaves out (`refusal: null`, `published_sets: {}`) and the env turns on
    # brings its own defaults.
    enabled = {k for k in base
               if base[k] in (None, {}) and any(n.startswith(f"{k}.") for n in named)}  # fmt: skip
    unnamed = {k for k in changed - set(named) if not any(k.startswith(f"{e}.") for e in enabled)}
    assert not unnamed, sorted(unnamed)
    assert all(merged[k] == v for k, v in named.items() if k in merged)


@pytest.mark.parametrize("env", ENVS)
@pytest.mark.parametrize(
    ("key", "value"),
    [("ppo_shaping.rounds", 1), ("reward_model.training.learning_rate", 0.002),
     ("stage_probe.ppo.ppo.learning_rate", 0.0003), ("evaluation.sampling.max_new_tokens", 7)],
)  # fmt: skip
def test_a_params_override_changes_exactly_its_key(models, env, key, value):
    head, *rest = key.split(".")
    override = value
    for part in reversed(rest):
        override = {part: override}
    plain = _effective(models, REPO_ROOT / "conf", env)
    changed = _effective(models, REPO_ROOT / "conf", env, {head: override})
    assert {k for k in changed if changed[k] != plain[k]} == {key}
    assert changed[key] == value


def test_a_local_file_naming_one_key_keeps_the_rest_of_the_block(tmp_project, models):
    local = tmp_project / "conf" / "local" / "parameters_ppo_shaping.yml"
    local.write_text(yaml.safe_dump({"ppo_shaping": {"rounds": 3}}))
    bootstrap_project(tmp_project)
    with KedroSession.create(project_path=tmp_project) as session:
        shaping = session.load_context().params["ppo_shaping"]
    base = yaml.safe_load((REPO_ROOT / "conf/base/parameters_ppo_shaping.yml").read_text())
    assert shaping.rounds == 3
    assert shaping.updates_per_round == base["ppo_shaping"]["updates_per_round"]
    assert shaping.ppo.learning_rate == base["ppo_shaping"]["ppo"]["learning_rate"]
