"""Behaviour judges: pluggable decisions of "clearly inappropriate" per generation.

Plain modules, no Kedro. Each judge returns one `Verdict` per generation.
"""
