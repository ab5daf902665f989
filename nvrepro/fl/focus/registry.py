"""The FOCUS tasks by name: :func:`make_task` and :func:`task_from_json` (the JSON a task travels as in
a train config)."""

from __future__ import annotations

import json
from typing import Any

from nvrepro.core.tooling.validation import ConfigError
from nvrepro.fl.focus.digits import DigitsTask
from nvrepro.fl.focus.linear import LinearTask
from nvrepro.fl.focus.tasks import FocusTask
from nvrepro.fl.focus.text import TextTask

TASKS: dict[str, type[FocusTask]] = {cls.name: cls for cls in (LinearTask, DigitsTask, TextTask)}


def task_from_json(spec: str) -> FocusTask:
    """The task :meth:`FocusTask.to_json` wrote; a clear error for an unknown name or field."""
    fields = json.loads(spec)
    name = fields.pop("name", None)
    cls = TASKS.get(name)
    if cls is None:
        raise ConfigError(f"task: unknown task {name!r} (known: {', '.join(sorted(TASKS))})")
    known = set(cls.__dataclass_fields__)
    unknown = sorted(set(fields) - known)
    if unknown:
        raise ConfigError(f"{unknown[0]}: not a field of the {name} task (known: {', '.join(sorted(known))})")
    return cls(**fields)


def make_task(name: str, **fields: Any) -> FocusTask:
    """A task by name (``"linear"``, ``"digits"``, ``"text"``) with its fields."""
    return task_from_json(json.dumps({"name": name, **fields}))
