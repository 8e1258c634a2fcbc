"""Score (prompt, response) pairs with a reward model, in exactly its training format.

RewardTrainer tokenises a conversation with the chat template, which closes the assistant turn
with EOS, and the classifier reads the score at the last non-pad token. Scoring any other way
(no EOS, another separator) gives numbers the model was never trained to produce.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from alignment_stages.models.artifacts import ModelArtifact
from alignment_stages.models.modes import eval_mode
from alignment_stages.models.sampling import length_batches, right_padded


def conversation_ids(
    tokenizer, prompt_messages: Sequence[dict[str, str]], response: str
) -> list[int]:
    messages = [*prompt_messages, {"role": "assistant", "content": response}]
    return list(
        tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True)["input_ids"]
    )


@torch.no_grad()
def score_responses(
    reward_model: ModelArtifact,
    prompts: Sequence[Sequence[dict[str, str]]],
    responses: Sequence[str],
    batch_size: int = 64,
    max_length: int | None = None,
) -> torch.Tensor:
    """(N,) scalar rewards. Long conversations keep their last `max_length` tokens, so the
    score position (the closing EOS) is never cut off."""
    model, tokenizer = reward_model.model, reward_model.tokenizer
    conversations = [
        conversation_ids(tokenizer, prompt, response)[-max_length if max_length else 0 :]
        for prompt, response in zip(prompts, responses, strict=True)
    ]
    # Batches of similar length: published prompts run from 9 to 2,000 characters, and one long
    # prompt padded a whole batch of 64 to its width. Unsorted, the selected round's 384
    # answers took most of `sample_selected_round_pairs`' 830 s in run P (docs/performance.md).
    # With right padding and a causal model a pad never reaches the score position, so the
    # order changes no score beyond float rounding.
    scores = torch.empty(len(conversations))
    with eval_mode(model):
        device = next(model.parameters()).device
        for rows in length_batches([len(ids) for ids in conversations], batch_size):
            # Right padding, as RewardTrainer's collator.
            input_ids, attention_mask = right_padded(
                [conversations[i] for i in rows], tokenizer.pad_token_id
            )
            logits = model(
                input_ids=input_ids.to(device), attention_mask=attention_mask.to(device)
            ).logits
            scores[rows] = logits[:, 0].float().cpu()
    return scores
