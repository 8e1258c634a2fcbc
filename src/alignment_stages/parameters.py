"""The base of every parameter block: a typo in a parameter file is an error, not a silently
ignored key, and validated parameters cannot be changed while a node runs."""

from pydantic import BaseModel, ConfigDict


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
