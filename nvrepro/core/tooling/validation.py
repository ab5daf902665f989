"""Config validation shared by every package: one error type whose message names the bad field.

Model, data, precision and experiment configs all fail the same way, so a typo in a YAML key and
a typo in Python read alike: ``ConfigError("model.mamba.n_heads: must be a positive integer, got 0")``.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any


class ConfigError(ValueError):
    """A config value is invalid. The message names the field and what is allowed."""


def require(ok: bool, field_name: str, message: str) -> None:
    """Raise :class:`ConfigError` ``"<field_name>: <message>"`` unless ``ok``."""
    if not ok:
        raise ConfigError(f"{field_name}: {message}")


def require_positive_int(value: Any, field_name: str) -> None:
    """Raise :class:`ConfigError` unless ``value`` is an ``int`` (not a bool) above 0."""
    require(isinstance(value, int) and not isinstance(value, bool) and value > 0,
            field_name, f"must be a positive integer, got {value!r}")


def dataclass_from_dict(cls, data: Any, prefix: str = ""):
    """``cls(**data)`` for a dataclass ``cls``; an unknown key raises :class:`ConfigError` naming it
    (``prefix`` is the dotted path of ``data`` in the enclosing config). An instance passes through."""
    if isinstance(data, cls):
        return data
    require(isinstance(data, dict), prefix or cls.__name__, f"must be a mapping, got {type(data).__name__}")
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        where = f"{prefix}." if prefix else ""
        raise ConfigError(f"{where}{unknown[0]}: unknown config key for {cls.__name__}; "
                          f"allowed keys: {sorted(known)}")
    return cls(**data)
