"""The eight perspectives in the paper's order, by name, and the modules that define them."""

from __future__ import annotations

import importlib
from types import ModuleType

from nvrepro.core.tooling.validation import ConfigError
from nvrepro.trust.types import Perspective

# name -> module under nvrepro.trust.perspectives (the paper's order of presentation).
MODULES = {
    "toxicity": "toxicity",
    "stereotypes": "stereotypes",
    "adversarial_robustness": "adversarial",
    "ood_robustness": "ood",
    "adversarial_demonstrations": "demonstrations",
    "privacy": "privacy",
    "ethics": "ethics",
    "fairness": "fairness",
}
NAMES = tuple(MODULES)
SHORT_LABELS = {
    "toxicity": "toxicity", "stereotypes": "stereotype bias", "adversarial_robustness": "adv. robustness",
    "ood_robustness": "OOD robustness", "adversarial_demonstrations": "adv. demonstrations",
    "privacy": "privacy", "ethics": "machine ethics", "fairness": "fairness",
}


def check_names(names) -> tuple[str, ...]:
    """``names`` as a tuple in the paper's order (``None`` or ``"all"``: all eight); an unknown name is a
    :class:`ConfigError` naming ``perspectives``."""
    if names is None or names == "all":
        return NAMES
    if isinstance(names, str):
        names = [names]
    unknown = [n for n in names if n not in MODULES]
    if unknown:
        raise ConfigError(f"perspectives: unknown perspective {unknown[0]!r}; choose from {', '.join(NAMES)}")
    return tuple(n for n in NAMES if n in set(names))


def module(name: str) -> ModuleType:
    """The module of perspective ``name`` (it has ``PERSPECTIVE``, ``RECORD_FIELDS``, ``probes_from_records``)."""
    check_names([name])
    return importlib.import_module(f"nvrepro.trust.perspectives.{MODULES[name]}")


def perspective(name: str) -> Perspective:
    """The :class:`~nvrepro.trust.types.Perspective` called ``name``."""
    return module(name).PERSPECTIVE
