"""Project settings. There is no need to edit this file unless you want to change values
from the Kedro defaults. For further information, including these default values, see
https://docs.kedro.org/en/stable/configure/configuration_basics/#configuration"""

from alignment_stages.mlflow_hook import TrackRunInMlflow
from alignment_stages.session import (
    LogNodeUsage,
    RefuseContradictoryParameters,
    RefuseMismatchedResume,
    ResolveProbeStart,
    RewritePinnedOutputs,
    RunIdentitySession,
)

# Instantiated project hooks. Hooks are executed in a Last-In-First-Out (LIFO) order.
# With ALIGNMENT_STAGES_RUN_VERSION set, a node's outputs at that version are rewritten, not
# refused, when its task is retried.
# Every node logs its wall time and its own peak RSS; ResolveProbeStart registers
# `probe_start_policy`, the model `stage_probe.start` names. TrackRunInMlflow is kedro-mlflow's
# hook with the project's switch, URI check and DAG-run identity (docs/tracking.md).
# RefuseMismatchedResume refuses a resumed PPO run on other parameters or inputs; its hooks are
# `tryfirst`, so it refuses before MLflow starts a run or logs a parameter.
HOOKS = (
    RewritePinnedOutputs(),
    LogNodeUsage(),
    ResolveProbeStart(),
    RefuseContradictoryParameters(),
    TrackRunInMlflow(),
    RefuseMismatchedResume(),
)

# Installed plugins for which to disable hook auto-registration: kedro-mlflow's own hook would
# log a second time, and start a run with tracking switched off.
DISABLE_HOOKS_FOR_PLUGINS = ("kedro_mlflow",)

# Class that manages the KedroSession. It pins one version for every task of an orchestrated run
# when ALIGNMENT_STAGES_RUN_VERSION is set, and is a plain KedroSession otherwise.
SESSION_CLASS = RunIdentitySession

# Class that manages storing KedroSession data.
# from kedro.framework.session.store import BaseSessionStore
# SESSION_STORE_CLASS = BaseSessionStore
# Keyword arguments to pass to the `SESSION_STORE_CLASS` constructor.
# SESSION_STORE_ARGS = {
#     "path": "./sessions"
# }

# Directory that holds configuration.
# CONF_SOURCE = "conf"

# Class that manages how configuration is loaded.
# from kedro.config import OmegaConfigLoader

# CONFIG_LOADER_CLASS = OmegaConfigLoader

# Keyword arguments to pass to the `CONFIG_LOADER_CLASS` constructor.
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    # Key by key: an env file or `--params` that names one key of a block changes that key
    # only. Kedro's default (destructive) replaces the whole block, and pydantic then fills
    # the rest with its own defaults. tests/test_settings.py holds every shipped env to it.
    "merge_strategy": {"parameters": "soft", "mlflow": "soft"},
    # "config_patterns": {
    #     "spark" : ["spark*/"],
    #     "parameters": ["parameters*", "parameters*/**", "**/parameters*"],
    # }
}

# Class that manages Kedro's library components.
# from kedro.framework.context import KedroContext
# CONTEXT_CLASS = KedroContext

# Class that manages the Data Catalog.
# from kedro.io import DataCatalog
# DATA_CATALOG_CLASS = DataCatalog
