"""Validated parameters of the `base_model` and `reward_model` pipelines."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from alignment_stages.parameters import LauncherParams, StrictModel


class TrainingParams(StrictModel):
    """The knobs every trainer shares. Precision and device are picked from the hardware."""

    epochs: float = Field(3.0, gt=0, description="passes over the training data")
    learning_rate: float = Field(1e-3, gt=0, lt=1)
    batch_size: int = Field(16, gt=0, description="per-device batch size")
    max_length: int = Field(128, gt=8, description="longest tokenised sequence kept")
    warmup_ratio: float = Field(0.05, ge=0, lt=1)
    weight_decay: float = Field(0.0, ge=0)
    logging_steps: int = Field(10, gt=0)
    precision: Literal["auto", "fp32", "bf16"] = Field(
        "auto",
        description="bf16 autocast with fp32 master weights (TrainingArguments.bf16); auto: "
        "bf16 where the device runs it fast and the model is large enough (models.precision)",
    )


class TinyModelParams(StrictModel):
    """The locally built Llama-style model used when no pretrained checkpoint is given."""

    vocab_size: int = Field(1024, ge=300, le=65536, description="BPE vocabulary incl. specials")
    hidden_size: int = Field(128, ge=16, le=1024)
    intermediate_size: int = Field(256, ge=16, le=4096)
    num_hidden_layers: int = Field(2, ge=1, le=12)
    num_attention_heads: int = Field(4, ge=1, le=32)
    max_position_embeddings: int = Field(256, ge=32, le=8192)

    @model_validator(mode="after")
    def _heads_divide_hidden(self) -> TinyModelParams:
        if self.hidden_size % self.num_attention_heads:
            raise ValueError("hidden_size must be a multiple of num_attention_heads")
        return self


class LoraParams(StrictModel):
    enabled: bool = False
    r: int = Field(8, gt=0)
    alpha: int = Field(16, gt=0)
    dropout: float = Field(0.0, ge=0, lt=1)
    target_modules: list[str] = Field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"]
    )


class AnswerSampleParams(StrictModel):
    """How a policy answers a seeded sample of its training prompts, several times each."""

    prompts: int = Field(64, gt=0, description="training prompts sampled, per category mix")
    samples_per_prompt: int = Field(2, gt=0)
    max_new_tokens: int = Field(48, gt=0)
    temperature: float = Field(1.0, gt=0)
    batch_size: int = Field(32, gt=0)
    seed: int = 0
    precision: Literal["auto", "fp32", "bf16"] = Field(
        "auto", description="sampling precision, as the evaluation's (models.precision)"
    )


class OwnRefusalParams(AnswerSampleParams):
    """The checkpoint's own refusals, added to its SFT (`stages.base_model`): unsafe training
    prompts answered by the checkpoint continuing `answer_prefix`, kept where the proxy judges
    read a refusal. Published answers of people-scored harmlessness are too few to teach a
    checkpoint that answers nearly every harmful request to refuse any (docs/performance.md)."""

    prompts: int = Field(400, gt=0, description="unsafe ppo_prompts drawn (all, if fewer)")
    samples_per_prompt: int = Field(
        2, gt=0, description="answers sampled per prompt; the first read as a refusal is kept"
    )
    batch_size: int = Field(64, gt=0)
    answer_prefix: str = Field("I can't help with that.", min_length=1)


class OwnAnswerParams(AnswerSampleParams):
    """The checkpoint's own answers to benign training prompts, added to its SFT beside its own
    refusals (`stages.base_model`): each prompt answered `samples_per_prompt` times, the first
    answer the proxy judges read as helpful kept. Without them every short answer in the
    model's own style that the SFT shows is a refusal, and the base learns to refuse in its
    own style, asked anything (run U refused 0.600 of AlpacaEval's requests, docs/performance.md).
    Filtering the model's own samples by a judge and training on those kept is rejection
    sampling fine-tuning (RAFT, Dong et al. 2023; ReST, Gulcehre et al. 2023)."""

    prompts: int = Field(200, gt=0, description="benign ppo_prompts drawn (all, if fewer)")
    samples_per_prompt: int = Field(
        2, gt=0, description="answers sampled per prompt; the first read as helpful is kept"
    )
    batch_size: int = Field(64, gt=0)


class SFTParams(TrainingParams):
    epochs: float = Field(8.0, gt=0, description="passes over sft_examples")
    learning_rate: float = Field(3e-3, gt=0, lt=1)
    enabled: bool = Field(True, description="SFT on sft_examples (always on for the tiny model)")
    rejected_share: float = Field(
        0.5, ge=0, le=1, description="share of SFT examples answered with the rejected response"
    )
    safe_answer_max_score: float | None = Field(
        None, ge=0, le=1,
        description="keep an unsafe prompt's example only where its chosen answer scores at most "
        "this (people's harm score; 0 = harmless); null keeps every example",
    )  # fmt: skip
    own_refusals: OwnRefusalParams | None = Field(
        None, description="add the checkpoint's own guided refusals of unsafe prompts to the SFT "
        "examples; null adds none",
    )  # fmt: skip
    own_answers: OwnAnswerParams | None = Field(
        None, description="add the checkpoint's own helpful answers to benign prompts to the SFT "
        "examples; null adds none",
    )  # fmt: skip
    # A pretrained checkpoint needs only a nudge: LoRA, merged back into the weights afterwards,
    # so base_policy stays a plain model (and PPO's own LoRA goes on top of it).
    lora: LoraParams = Field(default_factory=LoraParams)


class BaseModelParams(StrictModel):
    seed: int = 0
    pretrained: str = Field("", description="local path or hub id; empty builds the tiny model")
    trust_remote_code: bool = Field(False, description="run code shipped with a checkpoint")
    gguf_cache: str | None = Field(
        "~/.cache/alignment_stages/gguf",
        description="where a GGUF checkpoint's dequantised weights are kept after its first "
        "load (models.gguf_cache); null dequantises the GGUF on every load",
    )
    tiny: TinyModelParams = Field(default_factory=TinyModelParams)
    sft: SFTParams = Field(default_factory=SFTParams)

    @model_validator(mode="after")
    def _tiny_model_needs_sft(self) -> BaseModelParams:
        if not self.pretrained and not self.sft.enabled:
            raise ValueError("sft.enabled must be true when base_model.pretrained is empty")
        for name in ("own_refusals", "own_answers"):
            if getattr(self.sft, name) is not None and not (self.pretrained and self.sft.enabled):
                # The tiny model is built from sft_examples: before SFT it has nothing to say.
                raise ValueError(f"sft.{name} needs a pretrained checkpoint and sft.enabled")
        return self


class RewardEnsembleParams(StrictModel):
    """Reward models beside the one PPO optimises: their disagreement, and the gap between the
    optimised proxy and them, signal over-optimisation (Coste et al. 2023; Eisenstein et al.
    2023). Member 0 is `reward_model`, trained on every pair; the others are held out from PPO."""

    members: int = Field(1, ge=1, le=16, description="reward models in all; 1 is no ensemble")
    bootstrap: bool = Field(
        True, description="held-out members train on pairs resampled with replacement"
    )


class RewardModelParams(StrictModel):
    launcher: LauncherParams = Field(default_factory=LauncherParams)
    ensemble: RewardEnsembleParams = Field(default_factory=RewardEnsembleParams)
    seed: int = 0
    training: TrainingParams = Field(
        default_factory=lambda: TrainingParams(epochs=1, learning_rate=1e-4)
    )
    lora: LoraParams = Field(default_factory=LoraParams)
    center_rewards_coefficient: float | None = Field(
        0.01, ge=0, description="keeps rewards near zero mean (Eisenstein et al. 2023)"
    )
    accuracy_floor: float = Field(
        0.8, ge=0, le=1, description="pairwise accuracy on preference_val below this stops the run"
    )
    eval_batch_size: int = Field(64, gt=0)
    onpolicy_pairs: bool = Field(
        False, description="train on the base's on-policy pairs (`onpolicy_base_pairs`, the "
        "preference_sampling stage) beside the curated ones: the base's own style",
    )  # fmt: skip
