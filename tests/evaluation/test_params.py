"""Bad evaluation and stage-probe parameters are rejected with the key named."""

import pytest
from pydantic import ValidationError

from alignment_stages.evaluation.config import EvaluationParams
from alignment_stages.probe.config import StageProbeParams


@pytest.mark.parametrize(
    ("model", "values", "key"),
    [
        (EvaluationParams, {"sampling": {"samples_per_prompt": 0}}, "samples_per_prompt"),
        (EvaluationParams, {"side_by_side": 3}, "side_by_side"),
        (StageProbeParams, {"updates": 0}, "updates"),
        (StageProbeParams, {"ppo": {"rounds": 2, "algorithm": "a2c"}}, "algorithm"),
        (StageProbeParams, {"dpo": {"beta": -1}}, "beta"),
    ],
)
def test_bad_parameters_name_the_key(model, values, key):
    with pytest.raises(ValidationError, match=key):
        model(**values)
