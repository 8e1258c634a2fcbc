"""Sampling policies on a fixed prompt set and measuring their behaviour: plain modules."""
