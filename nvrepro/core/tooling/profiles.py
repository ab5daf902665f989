"""Experiment profiles: ``smoke`` (seconds, for CI) and ``paper`` (the figures), one table per experiment."""

from __future__ import annotations

from typing import Any

from nvrepro.core.tooling.validation import ConfigError


def profile_settings(table: dict[str, dict[str, Any]], profile: str, **overrides: Any) -> dict[str, Any]:
    """The settings of ``profile`` from ``table``, with every override that is not ``None`` applied.

    An unknown profile raises :class:`ConfigError` (a ``ValueError``) naming the field and the
    allowed values.
    """
    if profile not in table:
        raise ConfigError(f"profile: expected one of {sorted(table)}, got {profile!r}")
    settings = dict(table[profile])
    settings.update({k: v for k, v in overrides.items() if v is not None})
    return settings
