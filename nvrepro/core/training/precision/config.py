"""The one switch for FP8 training: :class:`FP8Config`, validated with messages naming the field.

Defaults are Nemotron-H's recipe (arXiv 2504.03624, Sec. 2.4 "FP8 recipe"): per-tensor *current*
scaling, E4M3 for weights and activations, E5M2 for gradients, every linear layer in FP8 except
those of the first 4 and last 4 layers of the pattern, which stay in BF16. The formats are fixed
(E4M3 forward, E5M2 backward, Transformer Engine's ``Format.HYBRID``); the backend, the scaling
recipe and the excluded depth are what an experiment varies.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

from nvrepro.core.tooling.validation import ConfigError
from nvrepro.core.tooling.validation import dataclass_from_dict as _from_dict

BACKENDS = ("none", "emulated", "torchao", "transformer_engine")
RECIPES = ("current", "delayed")


@dataclass
class FP8Config:
    """Which linears run in FP8, with which scaling, through which implementation.

    * ``backend``: ``"none"`` (no FP8: the BF16 baseline), ``"emulated"`` (quantise-dequantise
      through torch's float8 dtypes; runs anywhere, CPU included), ``"torchao"``
      (``torchao.float8`` training), ``"transformer_engine"`` (NVIDIA TE on a GPU, through
      Lightning's ``TransformerEnginePrecision`` plugin, ``configs/scale/fp8.yaml``).
    * ``recipe``: ``"current"`` (scale = format max / amax of the tensor now; the paper's) or
      ``"delayed"`` (scale from the max over the last ``amax_history_len`` amaxes).
    * ``exclude_first_n`` / ``exclude_last_n``: every linear of the first / last N *layers* of
      the pattern stays in BF16.
    * ``include_lm_head``: also run the LM head in FP8 (off in the paper's recipe). The embedding
      is a table lookup, not a GEMM, and is never quantised.
    """

    backend: Literal["none", "emulated", "torchao", "transformer_engine"] = "emulated"
    recipe: Literal["current", "delayed"] = "current"
    amax_history_len: int = 16
    exclude_first_n: int = 4
    exclude_last_n: int = 4
    include_lm_head: bool = False

    def __post_init__(self) -> None:
        self.validate()

    def validate(self, prefix: str = "fp8") -> None:
        if self.backend not in BACKENDS:
            raise ConfigError(f"{prefix}.backend: must be one of {', '.join(map(repr, BACKENDS))}, "
                              f"got {self.backend!r}")
        if self.recipe not in RECIPES:
            raise ConfigError(f"{prefix}.recipe: must be one of {', '.join(map(repr, RECIPES))}, "
                              f"got {self.recipe!r}")
        for name in ("amax_history_len", "exclude_first_n", "exclude_last_n"):
            value = getattr(self, name)
            low = 1 if name == "amax_history_len" else 0
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ConfigError(f"{prefix}.{name}: must be an integer >= {low}, got {value!r}")
        if not isinstance(self.include_lm_head, bool):
            raise ConfigError(f"{prefix}.include_lm_head: must be true or false, "
                              f"got {self.include_lm_head!r}")
        if self.backend == "torchao" and self.recipe != "current":
            raise ConfigError(f"{prefix}.recipe: torchao's float8 training only has dynamic "
                              "(current) per-tensor scaling; use recipe 'current', or backend "
                              f"'emulated' or 'transformer_engine' for 'delayed' (got {self.recipe!r})")

    @property
    def enabled(self) -> bool:
        return self.backend != "none"

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (safe for ``torch.load(weights_only=True)``)."""
        return asdict(self)


def as_fp8_config(value: FP8Config | dict | None, prefix: str = "fp8") -> FP8Config | None:
    """``None`` stays ``None``; a dict (YAML, checkpoint) becomes an :class:`FP8Config`."""
    if value is None or isinstance(value, FP8Config):
        return value
    return _from_dict(FP8Config, value, prefix)
