"""The stage probe: which stage is a policy in? Short PPO and DPO runs from the same start."""
