"""Behaviour metrics shared by each PPO round and the evaluation pipeline.

Plain modules, no Kedro: pure functions from generations, verdicts and log-probs to numbers.
"""
