"""Stages that compose several layers: each builds its parts from the catalog's inputs and its
parameters, then runs the algorithm. `alignment_stages.launcher` runs them inline or launched."""
