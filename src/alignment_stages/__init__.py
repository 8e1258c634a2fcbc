"""Alignment Stages"""

__version__ = "0.1"
