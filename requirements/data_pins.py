"""Print the `published-data` extra's pins in pip-compile's lock format, to append to the lock.

Those packages are installed for the data files they ship and never imported, and their declared
dependencies (Azure and OpenAI clients, ray, deepspeed, nemo-evaluator) do not resolve together,
so pip-compile cannot lock them; `make lock` appends them here and `make install` installs the
whole lock with --no-deps.
"""

import tomllib
from pathlib import Path

project = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["project"]
print("# The published-data extra, appended by `make lock` (requirements/data_pins.py): installed")
print("# --no-deps for the data files they ship, never imported.")
for requirement in sorted(project["optional-dependencies"]["published-data"], key=str.lower):
    print(requirement)
    print("    # via alignment_stages (pyproject.toml)")
