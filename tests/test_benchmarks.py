"""The PPO benchmark's own code paths run (TRL 1.12's side needs its venv and is not run here)."""

import argparse
import sys

import pytest
import torch

from tests.conftest import REPO_ROOT

sys.path[:0] = [str(REPO_ROOT / "benchmarks"), str(REPO_ROOT / "benchmarks" / "trl112")]
ppo_throughput = pytest.importorskip("ppo_throughput")


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    from make_models import write_benchmark_models

    directory = tmp_path_factory.mktemp("bench")
    write_benchmark_models(directory, 0, "smoke")
    return directory


ARGS = argparse.Namespace(
    batch_size=4, response_length=4, ppo_epochs=1, num_mini_batches=2, updates=1,
    warmup_updates=1, prompts=8, seed=0, lora_r=0, device="cpu",
)  # fmt: skip


def test_ours_reports_throughput_and_the_time_split(models):
    result = ppo_throughput.run_ours(models, ARGS)
    assert result["rollout_tokens_per_second"] > 0
    assert set(result["time_split_seconds_per_update"]) == {"generation", "scoring", "optimisation"}
    assert 0 < result["generated_tokens"] <= ARGS.updates * ARGS.batch_size * ARGS.response_length


@pytest.mark.parametrize("algorithm", ["grpo", "rloo"])
def test_the_critic_free_alternatives_report_throughput(models, algorithm):
    result = ppo_throughput.run_critic_free(models, ARGS, algorithm)
    assert result["impl"].startswith(f"alignment_stages.{algorithm}")
    assert result["rollout_tokens_per_second"] > 0 and result["seconds_per_update"] > 0


@pytest.mark.parametrize(
    "argv",
    [
        ["--repeats", "0"],
        ["--batch-size", "6", "--num-mini-batches", "4"],
        ["--precisions", "fp16"],
        ["--lora-r", "-1"],
        pytest.param(
            ["--device", "cuda"],
            marks=pytest.mark.skipif(
                torch.cuda.is_available(), reason="the refusal is for a machine without CUDA"
            ),
        ),
    ],
)
def test_bad_benchmark_arguments_stop_before_any_work(argv, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["ppo_throughput.py", *argv])
    with pytest.raises(SystemExit):
        ppo_throughput.main()
    assert "must be" in capsys.readouterr().err


def test_ours_at_bf16_with_lora_reports_mfu_and_the_bandwidth_bound(models):
    # small probes: without avx512_bf16 a 2048² bf16 matmul alone takes minutes
    args = argparse.Namespace(**{**vars(ARGS), "lora_r": 2})
    result = ppo_throughput.run_ours(models, args, "bf16", peak_size=64, bandwidth_mebibytes=4)
    assert result["precision"] == "bf16"
    # a 64² probe is no peak, so only the sign is checked here; the 2048² one is the real peak
    assert result["mfu"] > 0 and result["mfu_scoring"] > 0 and result["peak_gflops"] > 0
    assert result["generation_bound_tokens_per_second"] > result["generation_tokens_per_second"] > 0


def test_dense_parameters_count_a_tied_head_once_and_leave_lora_out():
    from peft import LoraConfig, get_peft_model

    from tests.models.tiny import tiny_policy

    model = tiny_policy().model
    c = model.config
    head = c.vocab_size * c.hidden_size
    kv = c.hidden_size * c.num_key_value_heads // c.num_attention_heads
    per_layer = (
        2 * c.hidden_size**2 + 2 * c.hidden_size * kv + 3 * c.hidden_size * c.intermediate_size
    )
    assert ppo_throughput.dense_parameters(model) == c.num_hidden_layers * per_layer + head
    lora = get_peft_model(model, LoraConfig(r=2, target_modules=["q_proj", "v_proj"]))
    assert ppo_throughput.dense_parameters(lora) == c.num_hidden_layers * per_layer + head


def test_update_flops_follow_two_four_and_six_n_per_token():
    flops = ppo_throughput.update_flops(100, 10, 3, 3, epochs=2, lora=True)
    assert flops["scoring"] == 2 * 100 * (2 * 10 + 3 + 3)
    assert flops["optimisation"] == 2 * 100 * (4 * 10 + 6 * 3)
    assert ppo_throughput.update_flops(100, 10, 3, 3, epochs=2, lora=False)[
        "optimisation"
    ] == 2 * 100 * (6 * 10 + 6 * 3)


@pytest.mark.parametrize("lora_r", [0, 2])
def test_the_reward_benchmark_times_real_reward_training_steps(lora_r):
    reward_throughput = pytest.importorskip("reward_throughput")
    args = argparse.Namespace(steps=3, batch_size=2, max_length=256, lora_r=lora_r)
    result = reward_throughput.time_training(reward_throughput.base_policy("smoke"), args, "fp32")
    assert result["pairs_per_second"] > 0 and result["seconds_per_step"] > 0


@pytest.mark.parametrize("argv", [["--steps", "1"], ["--precisions", "fp16"], ["--lora-r", "-2"]])
def test_bad_reward_benchmark_arguments_stop_before_any_work(argv, monkeypatch, capsys):
    reward_throughput = pytest.importorskip("reward_throughput")
    monkeypatch.setattr(sys, "argv", ["reward_throughput.py", "--size", "smoke", *argv])
    with pytest.raises(SystemExit):
        reward_throughput.main()
    assert "must be" in capsys.readouterr().err
