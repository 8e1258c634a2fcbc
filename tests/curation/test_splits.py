import pandas as pd

from alignment_stages.curation.config import SPLIT_NAMES, SplitFractions
from alignment_stages.curation.splits import split_by_prompt_group

TRAINING = ("sft_examples", "preference_train", "preference_val", "ppo_prompts")
EVALUATION = ("eval_prompts", "capability_probe")


def _pairs(n_prompts: int, pairs_per_prompt: int = 2) -> pd.DataFrame:
    rows = [
        {
            "prompt_messages": [{"role": "user", "content": f"q{i}"}],
            "prompt_text": f"q{i}",
            "chosen": f"good {j}",
            "rejected": f"bad {j}",
            "category": "benign",
            "source": "s",
        }
        for i in range(n_prompts)
        for j in range(pairs_per_prompt)
    ]
    return pd.DataFrame(rows)


def _prompts(frame: pd.DataFrame) -> set[str]:
    return set(frame["prompt_text"])


def test_every_prompt_lands_in_exactly_one_split():
    splits = vars(split_by_prompt_group(_pairs(2000), SplitFractions(), seed=0))
    seen = [_prompts(splits[name]) for name in SPLIT_NAMES]
    assert sum(len(s) for s in seen) == 2000
    assert set().union(*seen) == {f"q{i}" for i in range(2000)}
    training = set().union(*(_prompts(splits[n]) for n in TRAINING))
    evaluation = set().union(*(_prompts(splits[n]) for n in EVALUATION))
    assert not training & evaluation


def test_pairs_of_one_prompt_stay_together_and_sizes_follow_fractions():
    splits = split_by_prompt_group(_pairs(4000), SplitFractions(), seed=0)
    assert len(splits.sft_examples) % 2 == 0  # both pairs of each prompt
    assert abs(splits.sft_examples["prompt_text"].nunique() / 4000 - 0.30) < 0.03
    assert abs(len(splits.eval_prompts) / 4000 - 0.10) < 0.02
    assert splits.eval_prompts["n_pairs"].eq(2).all()


def test_same_seed_same_splits_other_seed_other_splits_order_irrelevant():
    pairs = _pairs(500)
    first = split_by_prompt_group(pairs, SplitFractions(), seed=7)
    again = split_by_prompt_group(pairs.sample(frac=1, random_state=1), SplitFractions(), seed=7)
    other = split_by_prompt_group(pairs, SplitFractions(), seed=8)
    for name in SPLIT_NAMES:
        assert _prompts(vars(first)[name]) == _prompts(vars(again)[name])
    assert _prompts(first.eval_prompts) != _prompts(other.eval_prompts)


def test_zero_fraction_split_is_empty():
    fractions = SplitFractions(
        sft_examples=0.5,
        preference_train=0.5,
        preference_val=0,
        ppo_prompts=0,
        eval_prompts=0,
        capability_probe=0,
    )
    splits = split_by_prompt_group(_pairs(100), fractions, seed=0)
    assert len(splits.preference_val) == 0 and len(splits.eval_prompts) == 0
    assert len(splits.sft_examples) + len(splits.preference_train) == 200


def test_a_split_below_its_minimum_is_named_with_what_to_add():
    import pytest

    from alignment_stages.curation.config import SplitMinimums
    from alignment_stages.curation.splits import SplitTooSmallError, check_split_sizes

    fractions = SplitFractions()
    splits = split_by_prompt_group(_pairs(4), fractions, seed=0)
    with pytest.raises(SplitTooSmallError, match=r"preference_val has 0 rows .*about 15 distinct"):
        check_split_sizes(splits, SplitMinimums(), fractions, n_prompts=4)
    big = split_by_prompt_group(_pairs(400), fractions, seed=0)
    check_split_sizes(big, SplitMinimums(), fractions, n_prompts=400)
    with pytest.raises(SplitTooSmallError, match="eval_prompts has .* < min_split_rows.eval_"):
        check_split_sizes(big, SplitMinimums(eval_prompts=10_000), fractions, n_prompts=400)
