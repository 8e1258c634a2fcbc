"""The PPO benchmark's own code paths run (TRL 1.12's side needs its venv and is not run here)."""

import argparse
import sys

import pytest

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
    warmup_updates=1, prompts=8, seed=0,
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
    "argv", [["--repeats", "0"], ["--batch-size", "6", "--num-mini-batches", "4"]]
)
def test_bad_benchmark_arguments_stop_before_any_work(argv, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["ppo_throughput.py", *argv])
    with pytest.raises(SystemExit):
        ppo_throughput.main()
    assert "must be" in capsys.readouterr().err


def test_the_precision_benchmark_times_both_precisions_on_the_real_update_path():
    ppo_precision = pytest.importorskip("ppo_precision")
    from alignment_stages.reward.train import reward_model_from_policy
    from tests.models.tiny import tiny_policy

    policy = tiny_policy()
    args = argparse.Namespace(batch_size=4, response_length=4, updates=1, lora_r=2)
    results = [
        ppo_precision.time_updates(policy, reward_model_from_policy(policy), args, precision)
        for precision in ("fp32", "bf16")
    ]
    assert [r["precision"] for r in results] == ["fp32", "bf16"]
    for result in results:
        assert result["seconds_per_update"] > 0 and result["matmul_gflops"] > 0
        assert set(result["split_seconds_per_update"]) == {"generation", "scoring", "optimisation"}
