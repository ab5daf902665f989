"""Checkers for the hybrid track's exercises, one module per notebook.

Each checker compares the student's answer with what the real code does, prints whether the
answer holds and why, and returns a :class:`~nvrepro.core.tooling.verdicts.Check` (truthy when it
holds; ``ok is None`` when not attempted yet). Notebooks use ``from nvrepro.hybrid import
exercises`` and call ``exercises.check_...``.
"""

from nvrepro.core.tooling.verdicts import Check  # noqa: F401  (re-exported)
from nvrepro.core.tooling.verdicts import report as _report  # noqa: F401
from nvrepro.hybrid.exercises.ssd import (  # noqa: F401
    impulse_response,
    check_decay_prediction,
    segsum_loop,
    reference_segsum,
    check_segsum,
    check_chunk_size_effect,
    DECAY_QUESTION,
)
from nvrepro.hybrid.exercises.why_hybrid import (  # noqa: F401
    check_recall_drop,
    _fraction_cases,
    check_attention_fraction_fn,
    _width_cases,
    check_ffn_width_fn,
)
from nvrepro.hybrid.exercises.inference_cost import (  # noqa: F401
    measured_kv_cache_bytes,
    check_kv_cache_bytes,
    check_break_even_context,
    _cache_cases,
    check_cache_bytes_fn,
    KV_QUESTION,
    BREAK_EVEN_QUESTION,
)
from nvrepro.hybrid.exercises.fp8 import (  # noqa: F401
    measured_gradient_underflow,
    check_underflow_prediction,
    check_current_scaling_fn,
    check_excluded_linears,
    FP8_FORMATS,
    EXCLUSION_QUESTION,
)
from nvrepro.hybrid.exercises.minipuzzle import (  # noqa: F401
    check_importance_additivity,
    check_kd_loss_fn,
    check_ffn_prune_fn,
    ADDITIVITY_ANSWERS,
)
