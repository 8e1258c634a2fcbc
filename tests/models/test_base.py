"""Tokenizer, tiny model, SFT mix and the pretrained path of the base policy."""

import pandas as pd
import pytest
import torch
from pydantic import ValidationError

from alignment_stages.models.artifacts import save_artifact
from alignment_stages.models.base import build_base_policy, load_pretrained_policy, sft_dataset
from alignment_stages.models.config import BaseModelParams
from alignment_stages.models.training import TrainingDivergedError
from tests.models.tiny import PARAMS, tiny_policy
from tests.models.trainer_steps import CapturedTrainer, assert_same_step, capture, first_step

TINY_SFT = {
    "epochs": 1,
    "learning_rate": 3e-3,
    "batch_size": 8,
    "max_length": 64,
    "logging_steps": 1,
}


def _sft_examples(n: int = 24) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "prompt_messages": [
                [{"role": "user", "content": f"How do I cook dish {i}?"}] for i in range(n)
            ],
            "chosen": [f"Simmer dish {i} gently." for i in range(n)],
            "rejected": ["Go away."] * n,
        }
    )


def test_tokenizer_has_distinct_specials_and_a_chat_template_closing_with_eos():
    tokenizer = tiny_policy().tokenizer
    assert len({tokenizer.pad_token_id, tokenizer.eos_token_id, tokenizer.bos_token_id}) == 3
    ids = tokenizer.apply_chat_template(
        [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}],
        tokenize=True, return_dict=True,
    )["input_ids"]  # fmt: skip
    assert ids[0] == tokenizer.bos_token_id and ids[-1] == tokenizer.eos_token_id
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "hi"}],
        add_generation_prompt=True,
        tokenize=True,
        return_dict=True,
    )["input_ids"]
    assert ids[: len(prompt)] == prompt  # prompt tokens are a prefix of the full conversation


def test_tiny_model_is_a_llama_of_at_most_a_few_million_parameters():
    params = BaseModelParams().tiny
    assert params.hidden_size * params.num_hidden_layers < 2048
    policy = tiny_policy()
    assert policy.model.config.model_type == "llama"
    assert sum(p.numel() for p in policy.model.parameters()) < 3_000_000


@pytest.mark.parametrize("share", [0.0, 0.5, 1.0])
def test_sft_mix_uses_the_configured_share_of_rejected_answers(share):
    examples = _sft_examples(400)
    dataset = sft_dataset(examples, rejected_share=share, seed=0)
    rejected = sum(row["completion"][0]["content"] == "Go away." for row in dataset)
    assert abs(rejected / 400 - share) < 0.07
    assert dataset[0]["prompt"] == [{"role": "user", "content": "How do I cook dish 0?"}]


def _tiny_params(**overrides) -> BaseModelParams:
    return BaseModelParams(tiny=PARAMS.model_dump(), sft={**TINY_SFT, **overrides})


def test_same_seed_same_base_policy():
    first = build_base_policy(_sft_examples(), _tiny_params())
    second = build_base_policy(_sft_examples(), _tiny_params())
    for (name, a), (_, b) in zip(
        first.model.state_dict().items(), second.model.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), name


def test_non_finite_loss_stops_sft(monkeypatch):
    import alignment_stages.models.base as base

    real_build = base.build_tiny_causal_lm

    def poisoned(tokenizer, params):
        model = real_build(tokenizer, params)
        with torch.no_grad():
            model.model.norm.weight.fill_(float("nan"))
        return model

    monkeypatch.setattr(base, "build_tiny_causal_lm", poisoned)
    with pytest.raises(TrainingDivergedError, match="base_model SFT: loss became nan"):
        build_base_policy(_sft_examples(), _tiny_params())


def test_pretrained_local_checkpoint_goes_through_from_pretrained(tmp_path):
    save_artifact(tiny_policy(), tmp_path / "ckpt")
    params = BaseModelParams(pretrained=str(tmp_path / "ckpt" / "model"), sft={"enabled": False})
    # The save_pretrained model directory has no tokenizer; a full checkpoint dir has both.
    (tmp_path / "full").mkdir()
    policy = tiny_policy()
    policy.model.save_pretrained(tmp_path / "full")
    policy.tokenizer.save_pretrained(tmp_path / "full")
    loaded = build_base_policy(
        _sft_examples(), params.model_copy(update={"pretrained": str(tmp_path / "full")})
    )
    assert loaded.model.config.model_type == "llama"
    assert loaded.tokenizer.pad_token_id != loaded.tokenizer.eos_token_id


@pytest.mark.parametrize(
    "source", ["/no/such/dir", "./missing-checkpoint", "no-such-org/no-such-model"]
)
def test_bad_pretrained_path_is_a_clear_error(source, monkeypatch):
    # No network in tests: hub ids fail at once instead of after retries.
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    with pytest.raises(FileNotFoundError, match="base_model.pretrained="):
        load_pretrained_policy(BaseModelParams(pretrained=source))


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"sft": {"enabled": False}}, "sft.enabled must be true"),
        (
            {"tiny": {"hidden_size": 30, "num_attention_heads": 4}},
            "multiple of num_attention_heads",
        ),
        ({"sft": {"rejected_share": 1.5}}, "rejected_share"),
        ({"tiny": {"hidden_sise": 64}}, "hidden_sise"),
    ],
)
def test_bad_base_model_parameters_name_the_problem(values, message):
    with pytest.raises(ValidationError, match=message):
        BaseModelParams(**values)


def test_lora_sft_of_a_pretrained_checkpoint_is_merged_into_a_plain_model(tmp_path):
    policy = tiny_policy()
    policy.model.save_pretrained(tmp_path / "full")
    policy.tokenizer.save_pretrained(tmp_path / "full")
    lora = {"enabled": True, "r": 4, "alpha": 8, "dropout": 0.0}
    params = BaseModelParams(
        pretrained=str(tmp_path / "full"), sft={**TINY_SFT, "epochs": 2, "lora": lora}
    )
    tuned = build_base_policy(_sft_examples(), params)
    assert not hasattr(tuned.model, "peft_config")  # merged: later stages get a plain model
    assert not any("lora" in name for name, _ in tuned.model.named_parameters())
    before = load_pretrained_policy(params.model_copy(update={"sft": {"enabled": False}}))
    moved = [
        name
        for (name, a), (_, b) in zip(
            before.model.state_dict().items(), tuned.model.state_dict().items(), strict=True
        )
        if not torch.equal(a, b)
    ]
    # only the projections LoRA wrapped changed
    assert moved and all(
        n.split(".")[-2] in {"q_proj", "k_proj", "v_proj", "o_proj"} for n in moved
    )


def test_a_lora_sft_base_trains_under_a_lora_ppo_in_the_same_process(tmp_path):
    """The SFT'd base is handed to PPO in memory (the catalog returns what it saved). After
    `merge_and_unload` the inner model kept the Trainer's instance-level `forward`, which
    closes over the SFT model: PPO's LoRA copy then ran the original's modules, its adapter got
    no gradient, and a whole SmolLM2 run's PPO stayed at KL 0.0000."""
    from alignment_stages.models.config import LoraParams
    from alignment_stages.ppo.config import PPOParams
    from alignment_stages.ppo.trainer import PPOTrainer
    from alignment_stages.reward.scoring import score_responses
    from alignment_stages.reward.train import reward_model_from_policy

    policy = tiny_policy()
    policy.model.save_pretrained(tmp_path / "full")
    policy.tokenizer.save_pretrained(tmp_path / "full")
    lora = {"enabled": True, "r": 4, "alpha": 8, "dropout": 0.0}
    params = BaseModelParams(pretrained=str(tmp_path / "full"), sft={**TINY_SFT, "lora": lora})
    tuned = build_base_policy(_sft_examples(), params)
    assert not [name for name, m in tuned.model.named_modules() if "forward" in m.__dict__]
    reward = reward_model_from_policy(tuned)
    ppo = PPOParams(rollout_batch_size=4, response_length=6, num_minibatches=1, ppo_epochs=1)
    trainer = PPOTrainer(
        tuned,
        reward,
        lambda p, t, i: score_responses(reward, p, t),
        ppo,
        lora=LoraParams(enabled=True, r=4, alpha=8),
    )
    prompts = [list(m) for m in _sft_examples(4)["prompt_messages"]]
    stats = trainer.step(prompts)
    assert stats["ppo/policy_grad_norm"] > 0


@pytest.mark.parametrize("lora", [False, True])
def test_sft_loss_from_the_model_logits_equals_trls_fused_head(lora, monkeypatch):
    """On CPU the SFT loss comes from the model's own logits (`fused_head_from_logits`): its
    value, its gradients and the logged entropy, accuracy and token count match TRL's fused
    LM head, whose chunked kernel then never runs."""
    import trl.trainer.utils as trl_utils
    from trl import SFTTrainer

    import alignment_stages.models.base as base
    import alignment_stages.models.training as training

    params = _tiny_params(lora={"enabled": lora, "r": 4, "alpha": 8}).sft
    dataset = sft_dataset(_sft_examples(16), rejected_share=0.5, seed=0)
    results = []
    for from_logits in (False, True):
        monkeypatch.undo()
        monkeypatch.setattr(SFTTrainer, "train", capture)
        monkeypatch.setattr(training, "LOGITS_HEAD_MIN_PARAMETERS", 0)  # the tiny model
        if from_logits:
            monkeypatch.setattr(trl_utils, "_ChunkedLogProbFunction", None)
        else:
            monkeypatch.setattr(base, "logits_head_off_gpu", lambda model: False)
        torch.manual_seed(0)
        with pytest.raises(CapturedTrainer) as caught:
            base.run_sft(tiny_policy(), dataset, params, seed=0)
        results.append(first_step(caught.value.args[0], count_items=True))
    assert_same_step(*results)


def test_sft_keeps_an_unsafe_example_only_where_people_scored_its_chosen_answer_harmless():
    """A published pair's chosen answer is the less harmful of two, often still compliance:
    with safe_answer_max_score the base is taught the safe side only by answers scored harmless.
    Benign examples (no score) stay."""
    examples = _sft_examples(8).assign(
        category=["unsafe"] * 4 + ["benign"] * 4,
        chosen_score=[0.0, 0.25, None, 0.0, None, None, 0.5, None],
    )
    kept = sft_dataset(examples, rejected_share=0.0, seed=0, safe_answer_max_score=0.0)
    prompts = [row["prompt"][0]["content"] for row in kept]
    assert prompts == [examples["prompt_messages"][i][0]["content"] for i in (0, 3, 4, 5, 6, 7)]
    assert len(sft_dataset(examples, rejected_share=0.0, seed=0)) == 8  # null keeps every one
