"""Per-stage wall time and peak RSS: each measurement sees its own peak, not an earlier one's."""

import logging
import subprocess
import sys
from types import SimpleNamespace

import pytest

import alignment_stages.resources as resources
from alignment_stages.resources import UsageMeter
from alignment_stages.session import LogNodeUsage

MB = 2**20


def _touch(megabytes: int) -> None:
    block = bytearray(megabytes * MB)
    block[::4096] = b"\x01" * len(block[::4096])  # every page resident
    del block


@pytest.mark.skipif(not resources._reset_peak(), reason="/proc/self/clear_refs is not writable")
def test_a_stage_sees_its_own_peak_and_the_next_stage_does_not_inherit_it():
    # A fresh process: in a long test session the heap already holds freed, resident memory
    # that a new block would reuse without raising the peak.
    code = (
        "from alignment_stages.resources import UsageMeter\n"
        "m = UsageMeter(); m.start(); b = bytearray(400 * 2**20); b[::4096] = b'\\x01' * len(b[::4096]); del b\n"
        "big = m.stop(); m.start(); small = m.stop()\n"
        "print(big.scope, small.scope, big.peak_rss_mb, small.peak_rss_mb)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    big_scope, small_scope, big, small = out.stdout.split()
    assert big_scope == small_scope == "stage"
    assert float(big) > float(small) + 300  # the 400 MB block counted once, then reset


def test_without_a_writable_clear_refs_the_figure_is_the_process_peak(monkeypatch):
    monkeypatch.setattr(resources, "_reset_peak", lambda: False)
    meter = UsageMeter()
    meter.start()
    usage = meter.stop()
    assert usage.scope == "process" and usage.peak_rss_mb > 0 and usage.seconds >= 0


def test_the_hook_logs_one_usage_line_per_node(caplog):
    hook, node = LogNodeUsage(), SimpleNamespace(name="train_reward_model_node")
    with caplog.at_level(logging.INFO, logger="alignment_stages.session"):
        hook.before_node_run(node)
        hook.after_node_run(node)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("usage/")]
    assert len(lines) == 1
    assert lines[0].startswith("usage/node=train_reward_model_node seconds=")
    assert "peak_rss_mb=" in lines[0]
