"""Curate 1,000,000 generated preference pairs and report pairs per second and peak RSS.

This is a benchmark, not a test: run it by hand on the target machine and record the figures in
docs/performance.md. It measures the real code path the `data_curation` pipeline runs
(`PreferenceFilesDataset` → `curate_files` → `check_bad_fraction` → `split_by_prompt_group`)
over four files in four source formats, with 0.1% broken lines.

    python benchmarks/curation_throughput.py [--pairs 1000000]

Targets on a 2-core machine: under 60 s and under 4 GB peak RSS.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import resource
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from alignment_stages.curation.config import DataCurationParams
from alignment_stages.curation.curate import check_bad_fraction, curate_files
from alignment_stages.curation.splits import split_by_prompt_group
from alignment_stages.datasets import PreferenceFilesDataset
from alignment_stages.demo.vocabulary import (
    BENIGN_TASKS,
    COMPLIANT_TEMPLATES,
    HELPFUL_TEMPLATES,
    PROMPT_TEMPLATES,
    RUDE_TEMPLATES,
)

logger = logging.getLogger("benchmarks.curation_throughput")

# Share of the pairs per file and format.
SHARES = {"explicit.jsonl": 0.6, "hh_rlhf.jsonl": 0.2, "ultrafeedback.parquet": 0.1, "shp.csv": 0.1}


def _pair(rng: random.Random, i: int) -> tuple[str, str, str]:
    """About two pairs per prompt, so prompt groups are realistic."""
    task, step1, step2 = BENIGN_TASKS[i % len(BENIGN_TASKS)]
    prompt = PROMPT_TEMPLATES[i % len(PROMPT_TEMPLATES)].format(task=task) + f" (case {i // 2})"
    chosen = (
        rng.choice(HELPFUL_TEMPLATES).format(
            task=task, step1=step1, step2=step2, Step1=step1.capitalize()
        )
        + f" Note {i}."
    )
    rejected = rng.choice(RUDE_TEMPLATES + COMPLIANT_TEMPLATES).format(
        task=task, step1=step1, step2=step2, Step1=step1.capitalize()
    )
    return prompt, chosen, rejected


def write_inputs(folder: Path, n_pairs: int, seed: int = 0) -> None:
    """Stream the generated files to disk, so generation does not inflate the measured peak RSS."""
    rng = random.Random(seed)
    start = 0
    for name, share in SHARES.items():
        count = int(n_pairs * share)
        pairs = (_pair(rng, i) for i in range(start, start + count))
        start += count
        if name == "explicit.jsonl":
            with open(folder / name, "w", encoding="utf-8") as out:
                for k, (p, c, r) in enumerate(pairs):
                    out.write(json.dumps({"prompt": p, "chosen": c, "rejected": r}) + "\n")
                    if k % 1000 == 999:
                        out.write('{"prompt": "broken\n')  # 0.1% invalid_json
        elif name == "hh_rlhf.jsonl":
            with open(folder / name, "w", encoding="utf-8") as out:
                for p, c, r in pairs:
                    prefix = f"\n\nHuman: {p}\n\nAssistant: "
                    out.write(json.dumps({"chosen": prefix + c, "rejected": prefix + r}) + "\n")
        elif name == "ultrafeedback.parquet":
            rows = [
                {"prompt": p, "chosen": [{"role": "user", "content": p}, {"role": "assistant", "content": c}],
                 "rejected": [{"role": "user", "content": p}, {"role": "assistant", "content": r}],
                 "score_chosen": 8.0, "score_rejected": 3.0}
                for p, c, r in pairs
            ]  # fmt: skip
            pq.write_table(pa.Table.from_pylist(rows), folder / name)
        else:
            rows = [{"history": p, "human_ref_A": c, "human_ref_B": r, "labels": 1,
                     "score_A": 10, "score_B": 2} for p, c, r in pairs]  # fmt: skip
            pa_csv.write_csv(pa.Table.from_pylist(rows), folder / name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=1_000_000)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        t0 = time.perf_counter()
        write_inputs(folder, args.pairs)
        generated_s = time.perf_counter() - t0
        input_mb = sum(p.stat().st_size for p in folder.iterdir()) / 1e6
        rss_before_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

        params = DataCurationParams()
        t1 = time.perf_counter()
        result = curate_files(PreferenceFilesDataset(path=str(folder)).load(), params)
        curated_s = time.perf_counter() - t1
        check_bad_fraction(result.curation_report, params.max_bad_fraction)
        splits = split_by_prompt_group(result.curated_pairs, params.splits, params.seed)
        total_s = time.perf_counter() - t1

    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    totals = result.curation_report["totals"]
    records = totals["read"]
    print(
        f"input: {records:,} records in {len(SHARES)} files, {input_mb:.0f} MB (generated in {generated_s:.1f} s)"
    )
    print(f"accepted={totals['accepted']:,} quarantined={totals['quarantined']}")
    print(f"eval_prompts={len(splits.eval_prompts):,} sft_examples={len(splits.sft_examples):,}")
    print(f"curate_s={curated_s:.1f} split_s={total_s - curated_s:.1f} total_s={total_s:.1f}")
    print(f"peak_rss_mb={peak_rss_mb:.0f} (after generation: {rss_before_mb:.0f})")
    print(f"pairs_per_second={records / total_s:,.0f}")


if __name__ == "__main__":
    main()
