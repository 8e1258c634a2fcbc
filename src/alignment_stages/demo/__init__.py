"""Deterministic demo preference data, in every supported source format.

`python -m alignment_stages.demo [output_dir]` rewrites data/01_raw/preferences/.
"""
