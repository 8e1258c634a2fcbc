"""The policy's own answers, labelled where the judges agree: training data for the learned judge
in the style of the model it will judge.

Published labels are other models' answers (PyRIT's are GPT-4-class). A judge trained only on
them meets a 135M model's answers as out-of-distribution text. So the real policy answers a
sample of its own training prompts, every configured judge reads each answer, and an answer is
kept with a label only where at least `min_agreeing` judges gave a verdict and all of them agree
— a weak-supervision vote in the spirit of Snorkel's labelling functions (Ratner et al. 2017),
with unanimity standing in for a learned label model.
"""

from __future__ import annotations

import random

import pandas as pd
import torch
from pydantic import Field

from alignment_stages.judges.config import JudgesParams, build_judge_panel
from alignment_stages.models.artifacts import ModelArtifact
from alignment_stages.models.base import as_messages
from alignment_stages.models.config import AnswerSampleParams
from alignment_stages.models.modes import eval_mode
from alignment_stages.models.precision import autocast, resolve_precision
from alignment_stages.models.sampling import encode_prompts, prompt_length_batches, sample_responses

LABEL = "panel_agreement"
# The columns of `labelled_answers` (curation.published writes them): answers with a human or
# judge label, as the learned judge reads them.
LABELLED_COLUMNS = (
    "source", "record_index", "prompt_text", "answer", "label", "score", "harm_category",
    "category", "split",
)  # fmt: skip


class PanelSampleParams(AnswerSampleParams):
    min_agreeing: int = Field(2, ge=2, description="judges that must all agree on a label")


@torch.no_grad()
def sample_answers(
    policy: ModelArtifact,
    prompts: pd.DataFrame,
    params: AnswerSampleParams,
    system_prompt: str | None = None,
    answer_prefix: str | None = None,
) -> pd.DataFrame:
    """`params.prompts` prompts drawn with a seed, each answered `samples_per_prompt` times;
    `prompt_messages` are the prompts as drawn, `system_prompt` (if any) is put before them only
    for sampling. `answer_prefix` (if any) opens every answer: the model continues it, and the
    answer kept is the prefix and its continuation. `prompt_index` is the row of `prompts`
    answered."""
    rng = random.Random(params.seed)
    rows = rng.sample(range(len(prompts)), min(params.prompts, len(prompts)))
    table = prompts.iloc[sorted(rows)]
    messages = [
        as_messages(m) for m in table["prompt_messages"] for _ in range(params.samples_per_prompt)
    ]
    categories = [c for c in table["category"] for _ in range(params.samples_per_prompt)]
    indices = [i for i in sorted(rows) for _ in range(params.samples_per_prompt)]
    # The system prompt is seen while sampling only: the answers are kept for the bare prompt.
    shown = messages if system_prompt is None else [
        [{"role": "system", "content": system_prompt}, *m] for m in messages
    ]  # fmt: skip
    texts: list[str] = [""] * len(shown)
    model, tokenizer = policy.model, policy.tokenizer
    device = next(model.parameters()).device
    precision = resolve_precision(params.precision, model, device)
    with torch.random.fork_rng(devices=[]), autocast(precision, device), eval_mode(model):
        torch.manual_seed(params.seed)
        prefix = (
            tokenizer(answer_prefix, add_special_tokens=False)["input_ids"] if answer_prefix else []
        )
        for rows in prompt_length_batches(shown, params.batch_size):
            batch = [shown[i] for i in rows]
            input_ids, mask = encode_prompts(tokenizer, batch, device)
            width = input_ids.shape[1]
            if prefix:  # after the generation prompt, on every (left-padded) row alike
                opening = torch.tensor(prefix, device=device).expand(len(batch), -1)
                input_ids = torch.cat([input_ids, opening], dim=1)
                mask = torch.cat([mask, torch.ones_like(opening)], dim=1)
            sampled = sample_responses(model, tokenizer, input_ids, mask, params.max_new_tokens,
                                       params.temperature)  # fmt: skip
            decoded = tokenizer.batch_decode(
                sampled.query_responses[:, width:], skip_special_tokens=True
            )
            for row, text in zip(rows, decoded, strict=True):
                texts[row] = text
    return pd.DataFrame({"prompt_index": indices, "prompt_messages": messages, "answer": texts,
                         "category": categories})  # fmt: skip


def panel_agreed_labels(
    answers: pd.DataFrame, judges: JudgesParams, min_agreeing: int
) -> pd.DataFrame:
    """`labelled_answers` rows (label `panel_agreement`, score 1 = violation) for the answers on
    whose verdict at least `min_agreeing` judges agree, every judge of the configuration voting
    (held-out ones included: agreement is about the answer, not about PPO), the learned judge
    apart."""
    # The learned judge does not vote: these labels are what it is trained on.
    voters = [panel for panel in (build_judge_panel(judges, None, leave_out=("learned",)),
                                  build_judge_panel(judges, None, held_out=True,
                                                    leave_out=("learned",))) if panel]  # fmt: skip
    votes: dict[str, list[str]] = {}
    for panel in voters:
        judged = panel.judge_detailed(
            list(answers["prompt_messages"]), list(answers["answer"]), list(answers["category"])
        )
        for name, verdicts in judged.per_judge.items():
            votes[name] = [v.label for v in verdicts]
    rows = []
    for index, row in enumerate(answers.itertuples(index=False)):
        labels = {votes[name][index] for name in votes}
        if len(votes) >= min_agreeing and len(labels) == 1:
            prompt = row.prompt_messages[-1]["content"]
            rows.append(("panel", index, prompt, row.answer, LABEL,
                         float(labels.pop() == "violation"), None, row.category, "judge_training"))  # fmt: skip
    return pd.DataFrame.from_records(rows, columns=list(LABELLED_COLUMNS), nrows=len(rows))
