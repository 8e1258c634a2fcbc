"""`ppo_shaping.algorithm` → the function that runs the shaping rounds.

`ppo` is the project's own PPO. `grpo` and `rloo` run TRL's maintained critic-free trainers
through the same rounds, history and checkpoint contract, so the gate and evaluation work
unchanged.
"""

from alignment_stages.ppo.critic_free import run_critic_free_rounds
from alignment_stages.ppo.rounds import run_shaping_rounds

SHAPING_ALGORITHMS = {
    "ppo": run_shaping_rounds,
    "grpo": run_critic_free_rounds,
    "rloo": run_critic_free_rounds,
}
