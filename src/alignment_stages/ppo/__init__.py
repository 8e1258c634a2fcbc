"""RLHF PPO owned by the project (TRL removed its PPO trainer).

Organised by role, as OpenRLHF does: `rollout` (experience), `advantages` (rewards and GAE),
`kl_control`, `losses`, `trainer` (one PPO update) and `rounds` (rounds, evaluation, guards).
References: Ziegler et al. 2019 (arXiv:1909.08593), Ouyang et al. 2022 (InstructGPT), Huang et
al. 2024, "The N+ Implementation Details of RLHF with PPO" (arXiv:2403.17031).
"""
