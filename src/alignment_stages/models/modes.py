"""Switching a model into evaluation mode for a block, and back."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from torch import nn


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """`model` in eval mode (dropout off) inside the block, back in the mode it had after it.

    Scoring, judging, sampling and the probe all run on models that may be mid-training (a PPO
    round's live policy, the reward model a trainer holds). The mode is restored in `finally`:
    an exception inside the block (a judge that raises, an interrupted evaluation) must not
    leave a training model with dropout off for the rest of the run.
    """
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)
