"""The numbers a paper reports, read from one data file per track, and printed beside the toy's.

Each track that quotes its paper keeps ``nvrepro/<track>/paper_facts.yaml``::

    paper: "<title, arXiv id>"
    facts:
      <key>: {value: <number>, unit: <text>, source: <where the paper says it>, what: <what it measures>}

:func:`paper_facts` loads and validates it (a bad entry raises ``ConfigError`` naming the key and
field); :func:`side_by_side` makes the table a notebook prints: each row a paper fact and the toy's
measured value of the same quantity (or ``None`` where the toy has no counterpart), so a reader
sees both in one place and no number of the paper is retyped in prose.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from pathlib import Path
from typing import Iterable, Mapping

import yaml

from nvrepro.core.tooling.paths import PACKAGE_DIR
from nvrepro.core.tooling.validation import ConfigError

FIELDS = ("value", "unit", "source", "what")


@dataclasses.dataclass(frozen=True)
class PaperFact:
    """One reported number: ``value`` in ``unit``, stated at ``source``; ``what`` it measures."""

    key: str
    value: float
    unit: str
    source: str
    what: str


def facts_path(track: str) -> Path:
    """``nvrepro/<track>/paper_facts.yaml`` (``track`` a subpackage name such as ``"hybrid"``)."""
    if not (isinstance(track, str) and track.isidentifier()):
        raise ConfigError(f"track: a subpackage name of nvrepro such as 'hybrid', got {track!r}")
    return PACKAGE_DIR / track / "paper_facts.yaml"


@functools.lru_cache(maxsize=None)
def paper_facts(track: str) -> dict[str, PaperFact]:
    """All facts of ``track``'s data file, by key, validated: every entry has exactly
    :data:`FIELDS`, a finite numeric ``value`` and non-empty text fields."""
    path = facts_path(track)
    if not path.is_file():
        raise ConfigError(f"track: no paper facts for {track!r} (expected {path})")
    data = yaml.safe_load(path.read_text()) or {}
    entries = data.get("facts")
    if not isinstance(entries, dict) or not entries:
        raise ConfigError(f"facts: {path} needs a non-empty 'facts' mapping")
    out = {}
    for key, entry in entries.items():
        if not isinstance(entry, dict) or set(entry) != set(FIELDS):
            got = sorted(entry) if isinstance(entry, dict) else type(entry).__name__
            raise ConfigError(f"facts.{key}: needs exactly the fields {list(FIELDS)}, got {got}")
        value = entry["value"]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ConfigError(f"facts.{key}.value: a finite number, got {value!r}")
        for field in ("unit", "source", "what"):
            if not (isinstance(entry[field], str) and entry[field].strip()):
                raise ConfigError(f"facts.{key}.{field}: a non-empty string, got {entry[field]!r}")
        out[key] = PaperFact(key, float(value), entry["unit"], entry["source"], entry["what"])
    return out


def paper_fact(track: str, key: str) -> PaperFact:
    """One fact of ``track`` (``ConfigError`` naming the known keys when ``key`` is not one)."""
    facts = paper_facts(track)
    if key not in facts:
        raise ConfigError(f"key: {key!r} is not a paper fact of {track!r}; known: {sorted(facts)}")
    return facts[key]


def paper_value(track: str, key: str) -> float:
    """The number of :func:`paper_fact`."""
    return paper_fact(track, key).value


def _format(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if value != 0 and (abs(value) >= 1e6 or abs(value) < 1e-3):
        return f"{value:.3g}"
    return f"{value:,.4g}"


def side_by_side(track: str, toy: Mapping[str, float | None] | Iterable[tuple[str, float | None]],
                 *, toy_label: str = "toy") -> str:
    """A text table: for each ``key -> toy value`` (in the given order), the paper's fact (value,
    unit, what it measures) and the toy's value (``-`` where ``None``: nothing comparable).

    ``toy`` maps fact keys to the toy's measurement of the same quantity, as a mapping or pairs.
    """
    pairs = list(toy.items()) if isinstance(toy, Mapping) else list(toy)
    if not pairs:
        raise ValueError("toy: name at least one paper fact to print")
    rows = [(paper_fact(track, key), value) for key, value in pairs]
    header = ("measure", "paper", toy_label, "unit")
    body = [(f.what, _format(f.value), _format(v), f.unit) for f, v in rows]
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(4)]
    line = lambda r: "  ".join(c.ljust(w) if i in (0, 3) else c.rjust(w)  # noqa: E731
                               for i, (c, w) in enumerate(zip(r, widths)))
    return "\n".join([line(header), line(tuple("-" * w for w in widths)), *map(line, body)])
