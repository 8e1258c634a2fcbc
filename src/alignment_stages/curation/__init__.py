"""Preference-data curation: read every file a user brings, turn each record into one canonical
pair or one quarantined record with a reason, and split by prompt group.

This package never imports Kedro; `pipelines/data_curation` is the thin wiring around it.
"""
