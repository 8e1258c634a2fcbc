"""DPO refinement from the policy the stability gate selected (Rafailov et al. 2023)."""
