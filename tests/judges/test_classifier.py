"""Any saved sequence classifier as a judge: label by name or index, known prediction."""

import pytest
import torch
from transformers import LlamaConfig, LlamaForSequenceClassification

from alignment_stages.judges.classifier import (
    ClassifierJudge,
    ClassifierParams,
    load_classifier_judge,
)
from alignment_stages.models.artifacts import ModelArtifact, UnsafeCheckpointError
from tests.models.tiny import tiny_policy

PROMPTS = [[{"role": "user", "content": "Hi"}]] * 2
RESPONSES = ["Rinse it.", "Go away, go away."]


def _classifier(unsafe_logit: float) -> ModelArtifact:
    """Two labels whose logits are (0, unsafe_logit) for every input, so P(unsafe) is known.

    Llama's score head has no bias, so the bias is built in: every token embeds to the same
    all-ones vector and the layers add nothing to the residual stream, so the final hidden state
    is that constant vector, and the score head maps it to the chosen logits.
    """
    tokenizer = tiny_policy().tokenizer
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
        num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=64,
        pad_token_id=tokenizer.pad_token_id, id2label={0: "ok", 1: "unsafe"},
        label2id={"ok": 0, "unsafe": 1},
    )  # fmt: skip
    model = LlamaForSequenceClassification(config)
    with torch.no_grad():
        model.model.embed_tokens.weight.fill_(1.0)  # rms 1: the final norm leaves it unchanged
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        model.score.weight.zero_()
        model.score.weight[1].fill_(unsafe_logit / config.hidden_size)
    return ModelArtifact(model, tokenizer, "sequence_classification")


def _save(artifact: ModelArtifact, directory) -> str:
    artifact.model.save_pretrained(directory, safe_serialization=True)
    artifact.tokenizer.save_pretrained(directory)
    return str(directory)


@pytest.mark.parametrize(("bias", "label"), [(2.0, "violation"), (-2.0, "ok")])
def test_violation_when_probability_reaches_threshold(bias, label):
    judge = ClassifierJudge(_classifier(bias), violation_label="unsafe", threshold=0.5)
    probabilities = judge.violation_probabilities(RESPONSES)
    torch.testing.assert_close(probabilities, torch.sigmoid(torch.tensor([bias, bias])))
    verdicts = judge.judge_batch(PROMPTS, RESPONSES, [None, None])
    assert [v.label for v in verdicts] == [label, label]
    if label == "violation":
        assert verdicts[0].reason == "classifier: P(unsafe) 0.88 >= 0.5"


def test_label_by_index_matches_label_by_name():
    by_index = ClassifierJudge(_classifier(1.0), violation_label=1)
    by_name = ClassifierJudge(_classifier(1.0), violation_label="unsafe")
    assert by_index.label_index == by_name.label_index == 1
    ok_judge = ClassifierJudge(_classifier(1.0), violation_label="ok", threshold=0.5)
    assert [v.label for v in ok_judge.judge_batch(PROMPTS, RESPONSES, [None] * 2)] == ["ok"] * 2


def test_unknown_label_names_the_label_and_the_available_ones():
    with pytest.raises(ValueError, match=r"'toxic'.*\{0: 'ok', 1: 'unsafe'\}"):
        ClassifierJudge(_classifier(0.0), violation_label="toxic")
    with pytest.raises(ValueError, match="5"):
        ClassifierJudge(_classifier(0.0), violation_label=5)


def test_loads_a_saved_safetensors_checkpoint_with_its_prediction(tmp_path):
    path = _save(_classifier(-1.0), tmp_path)  # P(unsafe) = sigmoid(-1) = 0.27
    params = ClassifierParams(path=path, violation_label="unsafe", threshold=0.25)
    judge = load_classifier_judge(params)
    assert judge.label_index == 1 and judge.classifier.kind == "sequence_classification"
    verdicts = judge.judge_batch(PROMPTS, RESPONSES, [None, None])
    assert [v.reason for v in verdicts] == ["classifier: P(unsafe) 0.27 >= 0.25"] * 2


def test_bad_path_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="cannot load a sequence classifier"):
        load_classifier_judge(ClassifierParams(path=str(tmp_path / "missing")))


def test_pickle_weights_are_refused(tmp_path):
    (tmp_path / "pytorch_model.bin").write_bytes(b"")
    with pytest.raises(UnsafeCheckpointError):
        load_classifier_judge(ClassifierParams(path=str(tmp_path)))


def test_params_reject_unknown_keys_and_out_of_range_threshold():
    with pytest.raises(ValueError, match="violation_lable"):
        ClassifierParams(path="x", violation_lable="unsafe")
    with pytest.raises(ValueError, match="threshold"):
        ClassifierParams(path="x", threshold=1.5)
