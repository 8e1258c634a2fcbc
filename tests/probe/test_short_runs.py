"""DPO's pairs follow PPO's prompts: the sampled category mix is `ppo_prompts`' mix."""

import pandas as pd
import pytest

from alignment_stages.probe.short_runs import sample_pairs_like


def _pairs(n_unsafe: int, n_benign: int) -> pd.DataFrame:
    categories = ["unsafe"] * n_unsafe + ["benign"] * n_benign
    return pd.DataFrame({"pair_id": range(len(categories)), "category": categories})


def test_pairs_follow_the_category_mix_of_ppo_prompts():
    pairs = _pairs(800, 200)  # 80% unsafe among the pairs
    prompts = pd.DataFrame({"category": ["unsafe"] * 30 + ["benign"] * 70})  # 30% among prompts
    sample = sample_pairs_like(pairs, prompts, 200, seed=0)
    assert len(sample) == 200 and sample["pair_id"].is_unique
    assert (sample["category"] == "unsafe").mean() == pytest.approx(0.3)  # not the pairs' 0.8
    # 700 benign pairs asked for, 200 exist: both categories shrink, the mix stays
    capped = sample_pairs_like(pairs, prompts, 1000, seed=0)
    assert (capped["category"] == "benign").sum() == 200
    assert (capped["category"] == "unsafe").mean() == pytest.approx(0.3, abs=0.01)
    assert sample_pairs_like(pairs, prompts, 200, seed=0).equals(sample)  # seeded


def test_categories_ppo_never_sees_are_left_out_and_the_sample_is_capped():
    pairs = pd.concat([_pairs(50, 50), pd.DataFrame({"pair_id": [999], "category": ["other"]})])
    prompts = pd.DataFrame({"category": ["unsafe", "benign"]})
    sample = sample_pairs_like(pairs, prompts, 10_000, seed=1)
    assert len(sample) == 100 and "other" not in set(sample["category"])
    assert len(sample_pairs_like(pairs, prompts, 40, seed=1)) == 40


def test_no_shared_category_is_a_clear_error():
    with pytest.raises(ValueError, match="shares no prompt category"):
        sample_pairs_like(_pairs(5, 0), pd.DataFrame({"category": ["benign"]}), 4, seed=0)
