"""Input checks every perspective shares: splits, sizes, behaviours, records, answers, and the rate of a flag.

Each raises :class:`~nvrepro.core.tooling.validation.ConfigError` naming the bad field and, for records and
answers, the index (``records[3].label``, ``answers[0]``).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from nvrepro.core.tooling.validation import require
from nvrepro.trust.types import Probe

SPLITS = ("train", "test")
BEHAVIOURS = ("safe", "unsafe")


def check_split(split: str) -> None:
    require(split in SPLITS, "split", f"must be one of {SPLITS}, got {split!r}")


def check_size(size: Any) -> None:
    require(isinstance(size, int) and not isinstance(size, bool) and size >= 1,
            "size", f"must be an integer >= 1, got {size!r}")


def check_behaviour(behaviour: str) -> None:
    require(behaviour in BEHAVIOURS, "behaviour", f"must be one of {BEHAVIOURS}, got {behaviour!r}")


def check_records(records: Sequence[Mapping[str, Any]], fields: Sequence[str], what: str = "records",
                  strings: Sequence[str] = ()) -> None:
    """Every record is a mapping with every one of ``fields``; those in ``strings`` are non-empty strings; the
    ``"id"``\\ s (where ``"id"`` is a field) are unique; and there is at least one record."""
    require(len(records) > 0, what, "no records given")
    seen: set = set()
    for i, record in enumerate(records):
        require(isinstance(record, Mapping), f"{what}[{i}]", f"must be a mapping, got {type(record).__name__}")
        for name in fields:
            require(name in record, f"{what}[{i}].{name}", f"missing field (a record needs {tuple(fields)})")
        for name in strings:
            require(isinstance(record[name], str) and record[name].strip() != "", f"{what}[{i}].{name}",
                    "must be a non-empty string")
        if "id" in fields:
            require(str(record["id"]) not in seen, f"{what}[{i}].id", f"duplicate id {record['id']!r}")
            seen.add(str(record["id"]))


def check_answers(probes: Sequence[Probe], answers: Sequence[Sequence[str]], perspective: str | None = None,
                  scenarios: Sequence[str] | None = None) -> None:
    """At least one probe, one non-empty list of strings per probe; each probe of ``perspective`` and, where
    ``scenarios`` is given, of one of them."""
    require(len(probes) > 0, "probes", "no probes given")
    require(len(probes) == len(answers), "answers",
            f"need one list of answers per probe: {len(probes)} probes, {len(answers)} answer lists")
    for i, (probe, samples) in enumerate(zip(probes, answers)):
        if perspective is not None:
            require(probe.perspective == perspective, f"probes[{i}].perspective",
                    f"must be {perspective!r}, got {probe.perspective!r}")
        if scenarios is not None:
            require(probe.scenario in scenarios, f"probes[{i}].scenario",
                    f"must be one of {tuple(scenarios)}, got {probe.scenario!r}")
        require(not isinstance(samples, str) and len(samples) > 0, f"answers[{i}]",
                f"must be a non-empty list of strings, got {samples!r}")
        for s in samples:
            require(isinstance(s, str), f"answers[{i}]", f"answers must be strings, got {type(s).__name__}")


def rate(flags: Sequence[bool]) -> float:
    """The share of true ``flags``; an empty sequence is an error (a metric over nothing is a bug upstream)."""
    if not len(flags):
        raise ValueError("a rate over no answers")
    return sum(bool(f) for f in flags) / len(flags)
