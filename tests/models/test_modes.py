"""`eval_mode`: dropout off inside the block, the model's own mode back after it, even when the
block raises."""

import pytest
from torch import nn

from alignment_stages.models.modes import eval_mode


def _model() -> nn.Module:
    return nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5))


@pytest.mark.parametrize("training", [True, False])
def test_the_mode_is_eval_inside_and_restored_after(training):
    model = _model().train(training)
    with eval_mode(model) as inside:
        assert inside is model and not model.training
        assert not any(module.training for module in model.modules())
    assert model.training is training
    assert all(module.training is training for module in model.modules())


def test_a_block_that_raises_still_gives_the_training_mode_back():
    model = _model().train()
    with pytest.raises(RuntimeError, match="judge failed"), eval_mode(model):
        raise RuntimeError("judge failed")
    assert model.training and model[1].training  # dropout back on for the next update
