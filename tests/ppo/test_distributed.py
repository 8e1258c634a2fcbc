"""The PPO trainer in two processes under `accelerate launch` (DDP over gloo on CPU).

In accelerate 1.15, `accelerate launch --cpu --num_processes 2` starts two processes only
through MPI (`--mpirun_hostfile`); without it, it silently runs one. `--multi_gpu` on a machine
without GPUs goes through torch.distributed.run and gives real two-process DDP over gloo, which
is what this test runs (and asserts: world size 2).
"""

import json
import os
import signal
import subprocess
import sys

import pytest

from alignment_stages.launcher import free_port
from tests.conftest import REPO_ROOT


def test_two_process_ddp_keeps_weights_in_sync_and_reduces_statistics(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "OMP_NUM_THREADS": "1"}
    command = [
        sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
        "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
        "--main_process_port", str(free_port()),  # not 29500: another launch may still hold it
        str(REPO_ROOT / "tests" / "ppo" / "ddp_worker.py"), str(tmp_path),
    ]  # fmt: skip
    # Its own session, so that a hang kills the launcher and both ranks, and what they printed
    # (the worker dumps every thread's stack after 180 s) reaches the failure message.
    process = subprocess.Popen(
        command, env=env, cwd=REPO_ROOT, text=True, start_new_session=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        _, stderr = process.communicate(timeout=240)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        _, stderr = process.communicate()
        pytest.fail(f"the two-process run did not finish in 240 s:\n{stderr[-3000:]}")
    assert process.returncode == 0, stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["world"] for r in ranks] == [2, 2]
    # DDP averaged the gradients: both ranks hold the same weights after two updates.
    assert abs(ranks[0]["checksum"] - ranks[1]["checksum"]) < 1e-6
    # Statistics are reduced over both processes: rank 0's raw reward is 0 and rank 1's is 1,
    # so both report the global mean 0.5, and every other statistic agrees too.
    for step in range(2):
        assert ranks[0]["stats"][step]["ppo/reward"] == ranks[1]["stats"][step]["ppo/reward"] == 0.5
        assert ranks[0]["stats"][step] == ranks[1]["stats"][step]
