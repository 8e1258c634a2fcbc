"""No FutureWarning or DeprecationWarning from the project's own calls, around one step of each
trainer: SFT, reward model, DPO, PPO, GRPO and RLOO.

A deprecated argument the project passes (`gradient_checkpointing=` to a TRL config,
`past_key_values=` to a forward) warns from inside the library, so the warning's file alone does
not say whose call it was. Each warning is recorded with the modules of the frame it is
attributed to and of the frame that called that one. It is tolerated only where `THIRD_PARTY`
lists its message with the library whose own code makes the deprecated call, and neither frame
is the project's."""

from __future__ import annotations

import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pandas as pd
import pytest

from alignment_stages.models.base import build_base_policy
from alignment_stages.models.config import BaseModelParams, RewardModelParams
from alignment_stages.reward.train import reward_model_from_policy, train_reward_model
from tests.models.tiny import PARAMS, tiny_policy

DEPRECATIONS = (FutureWarning, DeprecationWarning)
PROJECT = ("alignment_stages", "tests")
# Message start → the libraries whose own code calls the deprecated API, whatever the project
# passes: peft reads `is_gradient_checkpointing` whenever it wraps a model in LoRA, and TRL's
# trainers read it to switch checkpointing off around generation and reference passes.
THIRD_PARTY = {"`is_gradient_checkpointing` is deprecated": ("peft.", "trl.")}

PROMPT = [{"role": "user", "content": "How do I cook rice?"}]
PAIRS = pd.DataFrame({
    "prompt_messages": [PROMPT] * 8, "prompt_text": [f"How do I cook rice {i}?" for i in range(8)],
    "chosen": ["Rinse it, then simmer it."] * 8, "rejected": ["Go away."] * 8,
    "category": ["benign"] * 8,
})  # fmt: skip
ONE_STEP = {"epochs": 1, "batch_size": 8, "max_length": 64, "logging_steps": 1}
LORA = {"enabled": True, "r": 2, "alpha": 4, "target_modules": ["q_proj", "v_proj"]}


@dataclass(frozen=True)
class Raised:
    category: type[Warning]
    message: str
    modules: tuple[str, str]  # the attributed frame's module and its caller's

    @property
    def tolerated(self) -> bool:
        libraries = next((v for k, v in THIRD_PARTY.items() if self.message.startswith(k)), ())
        if any(module.startswith(PROJECT) for module in self.modules):
            return False
        return any(module.startswith(libraries) for module in self.modules if libraries)


def _modules(filename: str, lineno: int) -> tuple[str, str]:
    frame = sys._getframe(2)  # below: this helper and the showwarning hook
    while frame is not None and (frame.f_code.co_filename, frame.f_lineno) != (filename, lineno):
        frame = frame.f_back
    if frame is None:
        return ("?", "?")
    caller = frame.f_back.f_globals.get("__name__", "?") if frame.f_back else "?"
    return (frame.f_globals.get("__name__", "?"), caller)


@contextmanager
def recorded_deprecations() -> Iterator[list[Raised]]:
    """Every FutureWarning and DeprecationWarning raised inside, each time, with its modules."""
    raised: list[Raised] = []

    def record(message, category, filename, lineno, file=None, line=None):
        raised.append(Raised(category, str(message), _modules(filename, lineno)))

    with warnings.catch_warnings():
        for category in DEPRECATIONS:
            warnings.simplefilter("always", category)  # ahead of any library's "ignore"
        warnings.showwarning = record
        yield raised


def _sft():
    examples = PAIRS.drop(columns=["prompt_text", "category"])
    build_base_policy(examples, BaseModelParams(tiny=PARAMS.model_dump(), sft=ONE_STEP))


def _reward():
    train_reward_model(PAIRS, tiny_policy(), RewardModelParams(training=ONE_STEP, lora=LORA))


def _dpo():
    from alignment_stages.dpo.config import DPORefinementParams
    from alignment_stages.dpo.refine import refine_with_dpo

    params = DPORefinementParams(training=ONE_STEP, kl_eval={"max_new_tokens": 4, "max_prompts": 2})
    refine_with_dpo(tiny_policy(), PAIRS, params)


def _shaping(algorithm: str):
    from alignment_stages.stages.ppo_shaping import SHAPING_ALGORITHMS, ShapingStageParams
    from tests.ppo.round_inputs import shaping_inputs

    params = ShapingStageParams(
        algorithm=algorithm, rounds=1, updates_per_round=1,
        ppo={"rollout_batch_size": 4, "response_length": 4, "num_minibatches": 1},
        critic_free={"num_generations": 2}, eval={"max_new_tokens": 4, "batch_size": 8},
    )  # fmt: skip
    policy = tiny_policy()
    SHAPING_ALGORITHMS[algorithm](
        shaping_inputs(policy, reward_model_from_policy(policy), params), params
    )


STEPS = {
    "sft": _sft, "reward_model": _reward, "dpo": _dpo,
    "ppo": lambda: _shaping("ppo"), "grpo": lambda: _shaping("grpo"),
    "rloo": lambda: _shaping("rloo"),
}  # fmt: skip


@pytest.mark.parametrize("trainer", list(STEPS))
def test_one_step_of_each_trainer_raises_no_deprecation_of_the_projects_making(trainer):
    with recorded_deprecations() as raised:
        STEPS[trainer]()
    own = [w for w in raised if not w.tolerated]
    assert not own, "\n".join(f"{w.category.__name__} from {w.modules}: {w.message}" for w in own)


def test_a_deprecated_argument_the_project_passes_is_not_tolerated(tmp_path):
    """The check can fail: the old checkpointing argument, passed as the project once did,
    warns from transformers' and TRL's `__post_init__` and is caught, though no frame near it is
    the project's; so is the project reading the deprecated property itself."""
    from trl import SFTConfig

    with recorded_deprecations() as raised:
        SFTConfig(output_dir=str(tmp_path), use_cpu=True, bf16=False, gradient_checkpointing=False)
        tiny_policy().model.is_gradient_checkpointing  # noqa: B018 (the read is the point)
    assert [w.message.split(" ")[0] for w in raised] == [
        "`gradient_checkpointing`",
        "`is_gradient_checkpointing`",
    ]
    assert not any(w.tolerated for w in raised)
    assert raised[1].modules[1].startswith("tests.")
