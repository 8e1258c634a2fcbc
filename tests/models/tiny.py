"""A few-thousand-parameter model and tokenizer for artifact tests (no training)."""

from alignment_stages.models.artifacts import ModelArtifact
from alignment_stages.models.config import TinyModelParams
from alignment_stages.models.tiny import build_tiny_causal_lm, train_tokenizer

TEXTS = [
    "How do I cook rice?",
    "Rinse it, then simmer it.",
    "Go away.",
    "I can't help with that.",
] * 5
PARAMS = TinyModelParams(vocab_size=300, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                         num_attention_heads=2, max_position_embeddings=64)  # fmt: skip


def tiny_policy() -> ModelArtifact:
    tokenizer = train_tokenizer(TEXTS, PARAMS.vocab_size)
    return ModelArtifact(model=build_tiny_causal_lm(tokenizer, PARAMS), tokenizer=tokenizer)
