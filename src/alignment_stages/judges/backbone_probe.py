"""A learned judge on a pretrained checkpoint's own features: a linear probe over the mean of a
middle layer's states across the whole conversation, request and answer together.

Why a probe, not a classifier trained from scratch or a fine-tuned one:
- The from-scratch classifier (`judges.learned`, 64 wide, a 512-token vocabulary) reads 96
  tokens of the answer alone and reached held-out precision 0.568 and recall 0.765 on PyRIT's
  labels: too little capacity and too few labels (about 1,400) to learn language from.
- A pretrained checkpoint already reads language; a linear read-out of its states is the
  probing classifier of Alain & Bengio 2016, and guard models (Llama Guard, Inan et al. 2023)
  are the fine-tuned version of the same idea. Fine-tuning a 135M checkpoint on 1,400 answers
  costs about an hour on two CPU cores; computing its features once and fitting a logistic
  regression costs a few minutes, and the judge cannot drift from the checkpoint it reads.
- Middle layers, mean-pooled: on the half of PyRIT's harm-labelled answers whose requests were
  held out, SmolLM2-135M's layer 18 of 30 averaged over tokens agreed with the raters on 0.80 of
  the answers, its last token at the same layer on 0.73 and the last layer's last token on 0.72
  (docs/judges.md). Later layers specialise in predicting the next token (Tenney et al. 2019
  find the same for BERT).
- The conversation, not the answer alone: "Minorities are not bad for our country" is a refusal
  of "Why are minority groups bad?", and a recipe is harm only next to a request for one.

The probe is saved as an ordinary sequence-classification checkpoint of the first `layers`
blocks (so the catalog, MLflow and `ClassifierJudge` load it as any other), with the linear
head in its `score` weights and what the head needs besides in `config.safety_probe`: the bias
(Llama's score head has none), the mean pooling and the conversation's truncation.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import torch
from pydantic import Field
from transformers import AutoModelForSequenceClassification

from alignment_stages.judges.protocol import Messages
from alignment_stages.models.artifacts import ModelArtifact
from alignment_stages.models.checkpoints import load_checkpoint
from alignment_stages.models.modes import eval_mode
from alignment_stages.models.sampling import length_batches, right_padded
from alignment_stages.parameters import StrictModel

PROBE_CONFIG = "safety_probe"  # the config attribute that marks a probe and holds its head


class BackboneProbeParams(StrictModel):
    pretrained: str = Field(
        description="the checkpoint whose features are read: a local directory, a hub id or a "
        "GGUF file (`package:<module>/<file>` inside an installed package), as base_model reads"
    )
    trust_remote_code: bool = False
    gguf_cache: str | None = "~/.cache/alignment_stages/gguf"  # as base_model.gguf_cache
    layers: int = Field(18, gt=0)  # the first this many blocks are kept; the probe reads the last
    max_prompt_tokens: int = Field(64, gt=0)  # the request's last tokens are kept
    max_answer_tokens: int = Field(128, gt=0)  # the answer's first tokens are kept
    # The L2 penalty on the standardised weights, against the mean log-loss: 0.1 is
    # scikit-learn's C = 0.01 at about 1,000 examples, the value chosen on PyRIT's labels.
    weight_decay: float = Field(0.1, gt=0)
    # The share of unsafe training answers that come again opened or closed by a refusal
    # (`judges.learned.refusal_wrapped`): refuse-then-comply answers are unsafe too.
    refusal_wrapped: float = Field(1.0, ge=0, le=1)
    batch_size: int = Field(16, gt=0)


_HEAD_KEYS = ("pooling", "bias", "max_prompt_tokens", "max_answer_tokens")


def probe_head(config: Any) -> dict[str, Any] | None:
    """The probe's head settings where `config` is a probe's, else None; a head that lacks one
    is an error, not a judge that silently reads another way."""
    head = getattr(config, PROBE_CONFIG, None)
    if head is not None and (missing := [key for key in _HEAD_KEYS if key not in head]):
        raise ValueError(
            f"the classifier's config.{PROBE_CONFIG} lacks {missing}: it was not saved by "
            "judges.backbone_probe. Train the safety_judge again, or use another version."
        )
    return head


def _request(prompt: Messages | str) -> str:
    """The last user turn: what the answer answers."""
    if isinstance(prompt, str):
        return prompt
    turns = [str(m["content"]) for m in prompt if str(m["role"]) == "user"]
    return turns[-1] if turns else ""


def truncated_conversation_ids(
    tokenizer, prompt: Messages | str, response: str, max_prompt: int, max_answer: int
) -> list[int]:
    """The request's last `max_prompt` and the answer's first `max_answer` tokens, in the chat
    template: jailbreak wrappers put the request last, and the answer's opening decides."""
    request = tokenizer(_request(prompt), add_special_tokens=False)["input_ids"]
    answer = tokenizer(response, add_special_tokens=False)["input_ids"]
    messages = [
        {"role": "user", "content": tokenizer.decode(request[-max_prompt:])},
        {"role": "assistant", "content": tokenizer.decode(answer[:max_answer])},
    ]
    encoded = tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True)
    return list(encoded["input_ids"])


@torch.no_grad()
def pooled_features(
    artifact: ModelArtifact,
    prompts: Sequence[Messages | str],
    responses: Sequence[str],
    max_prompt: int,
    max_answer: int,
    batch_size: int = 16,
) -> torch.Tensor:
    """(N, hidden) the mean of the last kept block's states (after the final norm) over each
    conversation's tokens, padding left out."""
    model, tokenizer = artifact.model, artifact.tokenizer
    conversations = [truncated_conversation_ids(tokenizer, p, r, max_prompt, max_answer)
                     for p, r in zip(prompts, responses, strict=True)]  # fmt: skip
    features = torch.empty(len(conversations), model.config.hidden_size)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    with eval_mode(model):
        device = next(model.parameters()).device
        for rows in length_batches([len(ids) for ids in conversations], batch_size):
            # Right padding: Llama's positions count from the first column, so a left-padded row
            # would read its tokens at shifted positions.
            input_ids, mask = right_padded([conversations[i] for i in rows], pad)
            states = model.base_model(input_ids=input_ids.to(device),
                                      attention_mask=mask.to(device)).last_hidden_state  # fmt: skip
            weights = mask.to(device).unsqueeze(-1).to(states.dtype)
            features[rows] = ((states * weights).sum(1) / weights.sum(1)).float().cpu()
    return features


def probe_from_checkpoint(params: BackboneProbeParams) -> ModelArtifact:
    """The checkpoint's first `layers` blocks as a two-label sequence classifier, head zeroed."""
    checkpoint = load_checkpoint(params.pretrained, params.trust_remote_code, params.gguf_cache)
    source, tokenizer = checkpoint.model, checkpoint.tokenizer
    depth = source.config.num_hidden_layers
    if params.layers > depth:
        raise ValueError(
            f"safety_judge.backbone.layers={params.layers}, but {params.pretrained!r} has "
            f"{depth} blocks; choose at most {depth}"
        )
    if tokenizer.pad_token is None:  # the mask leaves pads out, so any id will do
        tokenizer.pad_token = tokenizer.eos_token
    config = copy.deepcopy(source.config)
    config.num_hidden_layers = params.layers
    if getattr(config, "layer_types", None):
        config.layer_types = config.layer_types[: params.layers]
    config.num_labels = 2
    config.id2label, config.label2id = {0: "safe", 1: "unsafe"}, {"safe": 0, "unsafe": 1}
    config.pad_token_id = tokenizer.pad_token_id
    config.architectures = None
    model = AutoModelForSequenceClassification.from_config(config)
    missing, _unexpected = model.load_state_dict(source.state_dict(), strict=False)
    if [key for key in missing if not key.startswith("score.")]:
        raise ValueError(f"{params.pretrained!r}: the probe could not take its blocks; {missing}")
    if not isinstance(getattr(model, "score", None), torch.nn.Linear):
        raise ValueError(f"{params.pretrained!r}: no `score` head on its sequence classifier")
    torch.nn.init.zeros_(model.score.weight)
    model.requires_grad_(False)
    return ModelArtifact(model=model.eval(), tokenizer=tokenizer, kind="sequence_classification")


def fit_logistic(
    features: torch.Tensor, labels: Sequence[int], weight_decay: float
) -> tuple[torch.Tensor, float]:
    """Weights and bias of an L2-penalised logistic regression, fitted on standardised features
    with L-BFGS and returned for the raw ones (a convex problem: no seed, one answer)."""
    y = torch.tensor(labels, dtype=torch.float64)
    x = features.double()
    mean, std = x.mean(0), x.std(0).clamp_min(1e-6)
    z = (x - mean) / std
    w = torch.zeros(z.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros((), dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([w, b], max_iter=500, line_search_fn="strong_wolfe")

    def loss() -> torch.Tensor:
        optimizer.zero_grad()
        value = torch.nn.functional.binary_cross_entropy_with_logits(z @ w + b, y)
        value = value + 0.5 * weight_decay * (w * w).sum()
        value.backward()
        return value

    optimizer.step(loss)
    raw = (w / std).detach()
    return raw.float(), float(b.detach() - (raw.double() * mean).sum())


def set_head(artifact: ModelArtifact, weight: torch.Tensor, bias: float,
             params: BackboneProbeParams) -> None:  # fmt: skip
    """Logits (0, w·x + b): softmax over them is the logistic regression's P(unsafe)."""
    model = artifact.model
    with torch.no_grad():
        model.score.weight.zero_()
        model.score.weight[1] = weight.to(model.score.weight.dtype)
    setattr(model.config, PROBE_CONFIG, {
        "pooling": "mean", "bias": [0.0, bias], "max_prompt_tokens": params.max_prompt_tokens,
        "max_answer_tokens": params.max_answer_tokens,
    })  # fmt: skip


@torch.no_grad()
def probe_probabilities(
    artifact: ModelArtifact,
    prompts: Sequence[Messages | str],
    responses: Sequence[str],
    label_index: int,
    batch_size: int = 16,
) -> torch.Tensor:
    """(N,) P(label_index) from a saved probe, read exactly as it was fitted."""
    head = probe_head(artifact.model.config)
    if head is None:
        raise ValueError("not a backbone probe: its config has no `safety_probe`")
    features = pooled_features(artifact, prompts, responses, head["max_prompt_tokens"],
                               head["max_answer_tokens"], batch_size)  # fmt: skip
    score = artifact.model.score
    logits = features @ score.weight.float().cpu().T + torch.tensor(head["bias"])
    return torch.softmax(logits, -1)[:, label_index]
