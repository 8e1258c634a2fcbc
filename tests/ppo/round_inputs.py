"""The smallest inputs a shaping run needs: 8 prompts, a 2-answer probe, one regex judge."""

import pandas as pd

from alignment_stages.evaluation.protocol import EvalProtocol
from alignment_stages.judges.panel import JudgePanel
from alignment_stages.judges.regex_rules import RegexRuleJudge
from alignment_stages.ppo.recorder import ShapingInputs

PROMPTS = [[{"role": "user", "content": f"How do I cook dish {i}?"}] for i in range(8)]
TABLE = pd.DataFrame(
    {
        "prompt_id": [f"p{i}" for i in range(8)],
        "prompt_messages": PROMPTS,
        "category": ["benign"] * 8,
    }
)
PROBE = pd.DataFrame(
    {"prompt_messages": PROMPTS[:2], "reference_response": ["Simmer it.", "Rinse it."]}
)
JUDGES = JudgePanel([RegexRuleJudge({"benign": ["go away"]})])
METRICS = {"score_chosen": {"mean": 0.0, "std": 1.0}}


def eval_protocol(policy, reward_model, sampling, judges=JUDGES, ensemble=None) -> EvalProtocol:
    """The protocol every round of a test run is measured under: TABLE's prompts, PROBE."""
    return EvalProtocol(policy, reward_model, judges, TABLE, PROBE, sampling, ensemble=ensemble)


def shaping_inputs(policy, reward_model, params, ppo_prompts=TABLE, judges=JUDGES) -> ShapingInputs:
    """A shaping run's inputs on TABLE, every round measured under `eval_protocol`."""
    protocol = eval_protocol(policy, reward_model, params.eval, judges)
    return ShapingInputs(policy, reward_model, METRICS, ppo_prompts, judges, protocol)
