"""`precision`: bf16 autocast with fp32 weights and fp32 log-prob and loss maths."""

import math

import pytest
import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState

from alignment_stages.models import precision
from alignment_stages.models.config import LoraParams
from alignment_stages.models.logprobs import response_logprobs
from alignment_stages.models.precision import autocast, resolve_precision
from alignment_stages.models.training import device_arguments
from alignment_stages.ppo.config import PPOParams
from alignment_stages.ppo.trainer import PPOTrainer
from alignment_stages.reward.train import reward_model_from_policy
from tests.models.tiny import tiny_policy

PROMPTS = [
    [{"role": "user", "content": "How do I cook rice?"}],
    [{"role": "user", "content": "Go?"}],
] * 4
CPU = torch.device("cpu")
# bf16 keeps 8 bits of mantissa: a log-prob of the tiny policy moves by at most this much
LOGPROB_TOLERANCE = 0.05


def _trainer(lora: bool = False, **overrides):
    policy = tiny_policy()
    params = PPOParams(rollout_batch_size=8, response_length=6, num_minibatches=2, **overrides)
    score = lambda prompts, texts, ids: torch.randn(len(texts))  # noqa: E731
    # With LoRA the base is frozen: its weights are cast to bf16 once per sampling loop, scoring
    # pass and update (models.precision.frozen_weights_cast_once) instead of at every forward.
    adapter = LoraParams(enabled=True, r=4, alpha=8) if lora else None
    return policy, PPOTrainer(policy, reward_model_from_policy(policy), score, params, lora=adapter)


def test_auto_keeps_fp32_for_a_tiny_model_and_picks_bf16_at_real_size(monkeypatch):
    model = tiny_policy().model
    assert resolve_precision("fp32", model, CPU) == "fp32"
    assert resolve_precision("bf16", model, CPU) == "bf16"
    monkeypatch.setattr(precision, "device_runs_bf16_fast", lambda device: True)
    assert resolve_precision("auto", model, CPU) == "fp32"  # overhead dominates at this size
    monkeypatch.setattr(precision, "AUTO_BF16_MIN_PARAMETERS", 1)
    assert resolve_precision("auto", model, CPU) == "bf16"
    monkeypatch.setattr(precision, "device_runs_bf16_fast", lambda device: False)
    assert resolve_precision("auto", model, CPU) == "fp32"  # no fast bf16 on this device


def test_bf16_log_probs_agree_with_fp32_and_stay_fp32():
    policy = tiny_policy()
    torch.manual_seed(0)
    ids = torch.randint(3, policy.tokenizer.vocab_size, (4, 12))
    mask = torch.ones_like(ids)
    fp32, _ = response_logprobs(policy.model, ids, mask, 6)
    with autocast("bf16", CPU):
        bf16, _ = response_logprobs(policy.model, ids, mask, 6)
    assert bf16.dtype == torch.float32
    assert not torch.equal(bf16, fp32)  # the products really ran in bf16
    torch.testing.assert_close(bf16, fp32, atol=LOGPROB_TOLERANCE, rtol=0)


@pytest.mark.parametrize("lora", [False, True], ids=["full", "lora"])
def test_bf16_ppo_starts_at_kl_zero_and_ratio_one(lora):
    _, trainer = _trainer(lora, precision="bf16", learning_rate=1e-12)
    assert trainer.precision == "bf16"
    torch.manual_seed(0)
    rollout = trainer.collect_rollout(PROMPTS)
    # The same weights, but the policy's require grad and the reference's do not, and the two go
    # through different bf16 kernels: measured 2.5e-4 apart at most, so KL 0 within 1e-3/token.
    torch.testing.assert_close(rollout.logprobs, rollout.ref_logprobs, atol=1e-3, rtol=0)
    stats = trainer.update(rollout)
    assert stats["ppo/kl"] == pytest.approx(0.0, abs=1e-3 * 6)
    assert stats["ppo/approx_kl"] < 1e-4 and stats["ppo/clipfrac"] == 0.0


@pytest.mark.parametrize("lora", [False, True], ids=["full", "lora"])
def test_bf16_ppo_trains_with_finite_losses_and_fp32_weights(lora):
    _, trainer = _trainer(lora, precision="bf16", learning_rate=1e-3)
    before = [p.detach().clone() for p in trainer.unwrapped_policy.parameters()]
    torch.manual_seed(0)
    for _ in range(3):
        stats = trainer.step(PROMPTS)
        assert all(math.isfinite(value) for value in stats.values()), stats
    after = list(trainer.unwrapped_policy.parameters())
    # fp32 master weights, and the frozen base's fp32 weights back after each bf16 cast
    assert all(p.dtype == torch.float32 for p in after)
    assert any(not torch.equal(b, p) for b, p in zip(before, after, strict=True))


def test_an_unknown_precision_is_refused():
    with pytest.raises(ValueError, match="precision"):
        PPOParams(precision="fp16")


def test_trl_stages_get_bf16_from_the_resolved_precision():
    model = tiny_policy().model
    assert device_arguments("auto", model)["bf16"] is False  # tiny: fp32 on this CPU or none
    assert device_arguments("bf16", model)["bf16"] is True
    assert device_arguments("fp32", model)["bf16"] is False


def test_a_bf16_reward_model_trains_on_cpu_with_a_finite_loss_and_fp32_weights():
    import pandas as pd

    from alignment_stages.models.config import RewardModelParams
    from alignment_stages.reward.train import train_reward_model

    pairs = pd.DataFrame(
        {
            "prompt_messages": [PROMPTS[0]] * 16,
            "chosen": ["Rinse it, then simmer it."] * 16,
            "rejected": ["Go away."] * 16,
        }
    )
    params = RewardModelParams(
        training={"epochs": 1, "batch_size": 8, "max_length": 64, "precision": "bf16"}
    )
    trained = train_reward_model(pairs, tiny_policy(), params)
    assert all(p.dtype == torch.float32 for p in trained.model.parameters())
    assert all(torch.isfinite(p).all() for p in trained.model.parameters())


def test_an_fp32_ppo_run_after_a_bf16_trainer_in_the_same_process_stays_fp32():
    # A TRL trainer with bf16 leaves accelerate's per-process state at mixed_precision 'bf16';
    # a PPO trainer built after it, as in one `kedro run`, must not inherit that autocast.
    Accelerator(cpu=True, mixed_precision="bf16")
    policy, trainer = _trainer(precision="fp32")
    assert trainer.accelerator.mixed_precision == "no"
    torch.manual_seed(0)
    ids = torch.randint(3, policy.tokenizer.vocab_size, (4, 12))
    mask = torch.ones_like(ids)
    with torch.no_grad():
        reference, _ = response_logprobs(policy.model, ids, mask, 6)
        trained, _ = response_logprobs(trainer.unwrapped_policy, ids, mask, 6)
    torch.testing.assert_close(trained, reference, atol=1e-6, rtol=0)


def test_an_accelerator_with_its_own_mixed_precision_is_refused():
    policy = tiny_policy()
    score = lambda prompts, texts, ids: torch.randn(len(texts))  # noqa: E731
    AcceleratorState._reset_state()
    accelerator = Accelerator(cpu=True, mixed_precision="bf16")
    with pytest.raises(ValueError, match="mixed_precision 'bf16'.*set ppo.precision"):
        PPOTrainer(
            policy, reward_model_from_policy(policy), score, PPOParams(), accelerator=accelerator
        )
    AcceleratorState._reset_state()


def test_an_explicit_bf16_on_a_device_without_fast_bf16_warns(monkeypatch, caplog):
    model = tiny_policy().model
    monkeypatch.setattr(precision, "device_runs_bf16_fast", lambda device: False)
    with caplog.at_level("WARNING", logger="alignment_stages.models.precision"):
        assert resolve_precision("bf16", model, CPU) == "bf16"  # asked for, so honoured
    assert "without fast bf16" in caplog.text
    caplog.clear()
    monkeypatch.setattr(precision, "device_runs_bf16_fast", lambda device: True)
    with caplog.at_level("WARNING", logger="alignment_stages.models.precision"):
        resolve_precision("bf16", model, CPU)
    assert "without fast bf16" not in caplog.text


@pytest.mark.parametrize("lora", [False, True], ids=["full", "lora"])
def test_evaluation_scores_and_probe_run_at_the_sampling_precision(lora):
    """`EvalProtocol.evaluate` scores answers and the probe under the eval's precision: bf16 moves
    the numbers (the products ran in bf16) within tolerance, and they come back fp32."""
    from alignment_stages.behaviour.metrics import probe_perplexity
    from alignment_stages.reward.scoring import score_responses

    policy, trainer = _trainer(lora=lora)
    model = trainer.unwrapped_policy if lora else policy.model  # LoRA: a frozen base
    reward = reward_model_from_policy(policy)
    answers = ["Simmer it gently.", "No."] * 4
    references = ["Rinse the rice, then simmer it."] * len(PROMPTS)
    probe = type(policy)(model=model, tokenizer=policy.tokenizer)
    results = {}
    for name in ("fp32", "bf16"):
        with precision.scoring_precision(reward.model, name):
            scores = score_responses(reward, PROMPTS, answers)
        with precision.scoring_precision(model, name):
            perplexity = probe_perplexity(probe, PROMPTS, references)
        results[name] = scores, perplexity
    (scores32, ppl32), (scores16, ppl16) = results["fp32"], results["bf16"]
    assert scores16.dtype == torch.float32 and not torch.equal(scores16, scores32)
    torch.testing.assert_close(scores16, scores32, atol=0.05, rtol=0.05)
    assert ppl16 != ppl32 and ppl16 == pytest.approx(ppl32, rel=0.05)
    # the fp32 weights are back after each pass
    assert all(p.dtype == torch.float32 for p in model.parameters())
