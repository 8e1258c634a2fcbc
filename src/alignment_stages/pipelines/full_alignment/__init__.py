"""`full_alignment`: every stage pipeline, chained. Also `__default__`.

Kedro 1.7's `find_pipelines` imports only the requested pipeline's package, so the composite
must be a package of its own that builds the stage pipelines itself.
"""

from alignment_stages.pipelines.full_alignment.pipeline import create_pipeline

__all__ = ["create_pipeline"]
