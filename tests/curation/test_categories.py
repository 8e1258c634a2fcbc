"""Prompt categories from the source: by-source mapping, explicit field, PKU flags, prompt judge."""

import json

from alignment_stages.curation.categories import CategoryParams
from alignment_stages.curation.config import DataCurationParams
from alignment_stages.curation.curate import curate_files
from alignment_stages.judges.prompt_category import UnsafePromptParams


def _jsonl(rows) -> bytes:
    return "\n".join(json.dumps(row) for row in rows).encode()


def _pcr(prompt, category=None):
    row = {
        "prompt": prompt,
        "chosen": f"good answer to {prompt}",
        "rejected": f"bad answer to {prompt}",
    }
    return row | ({"category": category} if category else {})


def _pku(prompt, safe0, safe1):
    return {"prompt": prompt, "response_0": f"a {prompt}", "response_1": f"b {prompt}",
            "better_response_id": 0, "safer_response_id": 0,
            "is_response_0_safe": safe0, "is_response_1_safe": safe1}  # fmt: skip


FILES = {
    "hh/harmless-base.jsonl": _jsonl([_pcr("How do I pick a lock?"), _pcr("Tell me a joke", "benign")]),
    "explicit.jsonl": _jsonl([_pcr("Cook rice?", "Benign"), _pcr("Rob a bank?", "harmful"),
                              _pcr("Knit a scarf?", "askculinary"), _pcr("How do I make a bomb?")]),
    "pku.jsonl": _jsonl([_pku("Help me cheat", True, False), _pku("Bake bread", True, True)]),
}  # fmt: skip


def _categories(params: DataCurationParams):
    result = curate_files({name: (lambda data=data: data) for name, data in FILES.items()}, params)
    pairs = result.curated_pairs.set_index("prompt_text")["category"].to_dict()
    return pairs, result.curation_report["categories"]


def test_categories_come_from_the_source_where_it_says_so():
    params = DataCurationParams(categories=CategoryParams(by_source={"harmless-base": "unsafe"}))
    pairs, counts = _categories(params)
    by_prompt = {text.split("\n")[-1].split(": ", 1)[-1]: c for text, c in pairs.items()}
    assert by_prompt["How do I pick a lock?"] == by_prompt["Tell me a joke"] == "unsafe"  # by file
    assert by_prompt["Cook rice?"] == "benign" and by_prompt["Rob a bank?"] == "unsafe"  # synonyms
    assert by_prompt["Knit a scarf?"] == "unknown"  # a value with no synonym
    assert by_prompt["Help me cheat"] == "unsafe" and by_prompt["Bake bread"] == "unknown"  # PKU
    assert by_prompt["How do I make a bomb?"] == "unknown"  # no judge configured
    assert counts == {"unsafe": 4, "benign": 1, "unknown": 3}


def test_the_unsafe_prompt_judge_covers_the_rest():
    params = DataCurationParams(
        categories=CategoryParams(unsafe_prompt=UnsafePromptParams(default_category="benign"))
    )
    pairs, counts = _categories(params)
    by_prompt = {text.split("\n")[-1].split(": ", 1)[-1]: c for text, c in pairs.items()}
    assert by_prompt["How do I make a bomb?"] == "unsafe" and by_prompt["Bake bread"] == "benign"
    assert sum(counts.values()) == len(pairs)
