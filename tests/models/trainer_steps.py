"""One TRL training step taken by hand, and the check that two such steps are the same: for the
tests that compare TRL's fused LM head with `models.training.fused_head_from_logits`."""

import pytest
import torch


class CapturedTrainer(Exception):
    """Raised by a patched `train` to hand the constructed trainer to the test."""


def capture(trainer, *args, **kwargs):
    raise CapturedTrainer(trainer)


def first_step(trainer, count_items: bool = False) -> tuple[float, dict, dict]:
    """Loss, gradients and logged metrics of one forward and backward on the first batch."""
    inputs = trainer._prepare_inputs(next(iter(trainer.get_train_dataloader())))
    items = {"num_items_in_batch": (inputs["labels"][:, 1:] != -100).sum()} if count_items else {}
    trainer.model.train()
    loss = trainer.compute_loss(trainer.model, dict(inputs), **items)
    loss.backward()
    grads = {n: p.grad.clone() for n, p in trainer.model.named_parameters() if p.grad is not None}
    metrics = {k: v[-1] for k, v in trainer._metrics["train"].items()}
    return loss.item(), grads, metrics


def assert_same_step(reference: tuple, candidate: tuple) -> None:
    (ref_loss, ref_grads, ref_metrics), (loss, grads, metrics) = reference, candidate
    assert loss == pytest.approx(ref_loss, rel=1e-5)
    assert grads.keys() == ref_grads.keys() and grads
    for name, grad in grads.items():
        torch.testing.assert_close(grad, ref_grads[name], rtol=1e-4, atol=1e-6, msg=name)
    assert metrics.keys() == ref_metrics.keys()
    for key, value in metrics.items():
        assert value == pytest.approx(ref_metrics[key], rel=1e-4, abs=1e-6), key
