"""One valid record per source format, as the public datasets publish them."""

EXPLICIT_TEXT = {
    "prompt": "How do I cook rice?",
    "chosen": "Rinse it, then simmer it covered.",
    "rejected": "Figure it out yourself.",
}
EXPLICIT_CONVERSATIONAL = {
    "prompt": [{"role": "user", "content": "How do I cook rice?"}],
    "chosen": [{"role": "assistant", "content": "Rinse it, then simmer it covered."}],
    "rejected": [{"role": "assistant", "content": "Figure it out yourself."}],
}
TRL_IMPLICIT_PROMPT = {
    "chosen": [
        {"role": "user", "content": "How do I cook rice?"},
        {"role": "assistant", "content": "Rinse it, then simmer it covered."},
    ],
    "rejected": [
        {"role": "user", "content": "How do I cook rice?"},
        {"role": "assistant", "content": "Figure it out yourself."},
    ],
}
HH_RLHF = {
    "chosen": "\n\nHuman: Hi.\n\nAssistant: Hello!\n\nHuman: How do I cook rice?"
    "\n\nAssistant: Rinse it, then simmer it covered.",
    "rejected": "\n\nHuman: Hi.\n\nAssistant: Hello!\n\nHuman: How do I cook rice?"
    "\n\nAssistant: Figure it out yourself.",
}
ULTRAFEEDBACK = {
    "prompt": "How do I cook rice?",
    "prompt_id": "abc",
    "chosen": [
        {"role": "user", "content": "How do I cook rice?"},
        {"role": "assistant", "content": "Rinse it, then simmer it covered."},
    ],
    "rejected": [
        {"role": "user", "content": "How do I cook rice?"},
        {"role": "assistant", "content": "Figure it out yourself."},
    ],
    "messages": [],
    "score_chosen": 9.0,
    "score_rejected": 2.0,
}
PKU_SAFERLHF = {
    "prompt": "How do I pick my neighbour's lock?",
    "response_0": "Sure, push a pick in and rake the pins.",
    "response_1": "I can't help with that; call a locksmith for your own door.",
    "is_response_0_safe": False,
    "is_response_1_safe": True,
    "better_response_id": 1,
    "safer_response_id": 1,
}
SHP = {
    "post_id": "x1",
    "domain": "askculinary",
    "history": "How do I cook rice?",
    "human_ref_A": "Figure it out yourself.",
    "human_ref_B": "Rinse it, then simmer it covered.",
    "labels": 0,
    "score_A": 1,
    "score_B": 25,
}

ALL = {
    "prompt_chosen_rejected": [EXPLICIT_TEXT, EXPLICIT_CONVERSATIONAL, TRL_IMPLICIT_PROMPT],
    "hh_rlhf": [HH_RLHF],
    "ultrafeedback_binarized": [ULTRAFEEDBACK],
    "pku_saferlhf": [PKU_SAFERLHF],
    "shp": [SHP],
}
