"""The reward model: trained with TRL's RewardTrainer, scored exactly as it was trained."""
