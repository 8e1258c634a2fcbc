"""The behaviour-stability gate: measured signals from `ppo_history` → a written decision."""
