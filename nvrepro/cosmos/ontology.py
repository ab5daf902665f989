"""Cosmos-Reason1's two ontologies (as the paper defines them), as data: every benchmark item carries a tag from them.

* **Physical common sense**: three categories (space, time, fundamental physics) and their
  subcategories (:data:`PHYSICAL_COMMON_SENSE`);
* **Embodied reasoning**: four capabilities x five agent types (:data:`EMBODIED_CAPABILITIES`,
  :data:`EMBODIED_AGENTS`).

:class:`PhysicalTag` and :class:`EmbodiedTag` refuse names outside the ontology, and
:func:`accuracy_by_category` turns per-item correctness into the per-category table the paper reports
(every subcategory listed, with the number of items the toy has for it: most have none).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

PHYSICAL_COMMON_SENSE: dict[str, tuple[str, ...]] = {
    "space": ("relationship", "plausibility", "affordance", "environment"),
    "time": ("actions", "order", "causality", "camera", "planning"),
    "fundamental physics": ("attributes", "states", "object permanence", "mechanics", "electromagnetism",
                            "thermodynamics", "anti-physics"),
}
EMBODIED_CAPABILITIES = ("process sensory input", "predict action effects", "respect physical constraints",
                         "learn from interactions")
EMBODIED_AGENTS = ("humans", "animals", "robot arms", "humanoids", "autonomous vehicles")


@dataclass(frozen=True)
class PhysicalTag:
    """A (category, subcategory) of the physical common-sense ontology."""

    category: str
    subcategory: str

    def __post_init__(self) -> None:
        if self.category not in PHYSICAL_COMMON_SENSE:
            raise ValueError(f"category: must be one of {sorted(PHYSICAL_COMMON_SENSE)}, got {self.category!r}")
        if self.subcategory not in PHYSICAL_COMMON_SENSE[self.category]:
            raise ValueError(f"subcategory: {self.category!r} has {PHYSICAL_COMMON_SENSE[self.category]}, "
                             f"got {self.subcategory!r}")

    def __str__(self) -> str:
        return f"{self.category} / {self.subcategory}"


@dataclass(frozen=True)
class EmbodiedTag:
    """A (capability, agent) cell of the embodied-reasoning ontology."""

    capability: str
    agent: str

    def __post_init__(self) -> None:
        if self.capability not in EMBODIED_CAPABILITIES:
            raise ValueError(f"capability: must be one of {EMBODIED_CAPABILITIES}, got {self.capability!r}")
        if self.agent not in EMBODIED_AGENTS:
            raise ValueError(f"agent: must be one of {EMBODIED_AGENTS}, got {self.agent!r}")


def physical_tags() -> list[PhysicalTag]:
    """Every subcategory of the physical common-sense ontology, in the paper's order (16 in all)."""
    return [PhysicalTag(c, s) for c, subs in PHYSICAL_COMMON_SENSE.items() for s in subs]


def embodied_tags() -> list[EmbodiedTag]:
    """Every capability x agent cell of the embodied-reasoning ontology (20 in all)."""
    return [EmbodiedTag(c, a) for c in EMBODIED_CAPABILITIES for a in EMBODIED_AGENTS]


def accuracy_by_category(tags: Sequence[PhysicalTag], correct: Sequence[float]) -> list[dict]:
    """One row per subcategory of the ontology: ``{"category", "subcategory", "items", "accuracy"}``
    (``accuracy`` is ``None`` where no item has the tag), then one row per category
    (``subcategory == "all"``) pooling its items. ``correct``: per item 0/1, or a share in [0, 1] (e.g.
    averaged over seeds); accuracy is their mean."""
    if len(tags) != len(correct):
        raise ValueError(f"tags, correct: {len(tags)} tags for {len(correct)} answers")
    rows = []
    for category, subs in PHYSICAL_COMMON_SENSE.items():
        pooled: list[float] = []
        for sub in subs:
            hits = [float(ok) for tag, ok in zip(tags, correct) if (tag.category, tag.subcategory) == (category, sub)]
            pooled += hits
            rows.append({"category": category, "subcategory": sub, "items": len(hits),
                         "accuracy": sum(hits) / len(hits) if hits else None})
        rows.append({"category": category, "subcategory": "all", "items": len(pooled),
                     "accuracy": sum(pooled) / len(pooled) if pooled else None})
    return rows
