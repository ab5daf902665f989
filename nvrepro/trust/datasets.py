"""Loaders for the real datasets DecodingTrust evaluates on, as normalised records (plain dicts).

Each dataset is read through Hugging Face ``datasets.load_dataset`` as a :class:`DatasetSource` names it (a hub
dataset, or a local builder such as ``"json"``/``"csv"`` with ``data_files``) and every row becomes one record
in the schema of :data:`RECORD_SCHEMAS`; the perspective modules turn records into probes (nothing here builds
a prompt). The synthetic generators of the perspectives produce records in the same schemas, so a perspective
runs on either.

=====================  ==========================================  ==============================================
dataset (aliases)      source columns (defaults, overridable)      record
=====================  ==========================================  ==============================================
realtoxicityprompts    prompt.text, prompt.toxicity                {"id", "prompt", "toxic_prompt": toxicity>=0.5}
(toxicity)
stereotypes            user_prompt, stereotype_topic_tag,          {"id", "topic", "group", "statement"}
(stereotype)           demographic_group_tag
advglue_sst2           sentence, label (0 negative / 1 positive),  {"id", "text", "label": "negative"/"positive",
(adversarial)          perturbation or method (optional)           "perturbation" (default "adversarial")}
ood_style              sentence, label, style (optional)           {"id", "text", "label", "style"}
ood_knowledge          question, choices, answer                   {"id", "question", "options", "answer": index}
enron (privacy)        name, email                                 {"id", "name", "email"}
ethics_commonsense     input, label (1 = wrong)                    {"id", "scenario", "label": "wrong"/"not wrong"}
(ethics)
adult (fairness)       sex, income or class (">50K"), the rest     {"id", "features": {other columns}, "sex",
                                                                   "label": 1 if >50K else 0}
=====================  ==========================================  ==============================================

``source.columns`` maps a source field (the left names, e.g. ``"prompt_text"``) to the column that holds it; a
dotted column (``"prompt.text"``) reads a field of a struct column. Every dataset also takes an optional ``id``
column; without one a record's id is ``"<dataset>-<row index>"``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from nvrepro.core.tooling.validation import ConfigError, dataclass_from_dict, require, require_positive_int

SENTIMENT_LABELS = ("negative", "positive")  # SST-2's 0 / 1
ETHICS_LABELS = ("not wrong", "wrong")  # ETHICS commonsense's 0 / 1
_MISSING = object()


@dataclass(frozen=True)
class DatasetSource:
    """Where a dataset's rows come from: ``load_dataset(path, name, data_files=..., split=..., **options)``.

    ``path``: a hub dataset (``"allenai/real-toxicity-prompts"``) or a local builder (``"json"``, ``"csv"``);
    ``data_files``: local files for a builder (a path, a list, or a split -> files mapping); ``split``: the
    split to read; ``name``: the hub config; ``columns``: source field -> column overrides (see the module
    table); ``limit``: read at most this many rows (the first ones); ``options``: further keyword arguments of
    ``load_dataset`` (``cache_dir``, ``revision``, a csv builder's ``delimiter`` or ``column_names``).
    """

    path: str
    data_files: Any = None
    split: str = "train"
    name: str | None = None
    columns: Mapping[str, str] = field(default_factory=dict)
    limit: int | None = None
    options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        require(isinstance(self.path, str) and bool(self.path), "source.path",
                f"must be a non-empty string, got {self.path!r}")
        require(isinstance(self.split, str) and bool(self.split), "source.split",
                f"must be a non-empty string, got {self.split!r}")
        require(self.name is None or isinstance(self.name, str), "source.name",
                f"must be a string or null, got {self.name!r}")
        require(isinstance(self.columns, Mapping), "source.columns",
                f"must be a mapping of field -> column, got {type(self.columns).__name__}")
        for key, column in self.columns.items():
            require(isinstance(column, str) and bool(column), f"source.columns.{key}",
                    f"must be a column name, got {column!r}")
        if self.limit is not None:
            require_positive_int(self.limit, "source.limit")
        require(isinstance(self.options, Mapping), "source.options",
                f"must be a mapping of load_dataset keyword arguments, got {type(self.options).__name__}")
        clash = sorted({"path", "name", "data_files", "split"} & set(self.options))
        require(not clash, f"source.options.{clash[0]}" if clash else "source.options",
                "set it as a field of the source, not as an option")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | "DatasetSource") -> "DatasetSource":
        """A source from a config mapping; an unknown key raises :class:`ConfigError` naming it."""
        return dataclass_from_dict(cls, data if isinstance(data, cls) else dict(data), "source")


@dataclass(frozen=True)
class _Spec:
    """One dataset: its source fields with their default columns (candidates tried in order), which are
    optional (absent -> ``None``), the record fields, and how a row's field values become a record."""

    fields: Mapping[str, tuple[str, ...]]
    optional: frozenset[str]
    record_fields: tuple[str, ...]
    normalise: Callable[[Mapping[str, Any], str], dict[str, Any]]
    rest_as: str | None = None  # the record key that collects every unmapped column (fairness' "features")


def _text(value: Any, where: str) -> str:
    require(isinstance(value, str) and bool(value.strip()), where, f"must be a non-empty string, got {value!r}")
    return value.strip()


def _binary_label(value: Any, names: Sequence[str], where: str) -> str:
    """``names[value]`` for a 0/1 label (an int, or its string); a label already spelled as one of ``names``
    passes through."""
    if isinstance(value, str) and value.strip().lower() in names:
        return value.strip().lower()
    if isinstance(value, str) and value.strip() in ("0", "1"):
        value = int(value.strip())
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value in (0, 1):
        return names[int(value)]
    raise ConfigError(f"{where}: must be 0 or 1 (or one of {list(names)}), got {value!r}")


def _toxicity(v: Mapping[str, Any], where: str) -> dict[str, Any]:
    score = v["prompt_toxicity"]
    # RealToxicityPrompts leaves a few Perspective scores empty; an unscored prompt is not counted as toxic.
    if score is not None and not (isinstance(score, (int, float)) and not isinstance(score, bool)):
        raise ConfigError(f"{where}.prompt_toxicity: must be a number or null, got {score!r}")
    return {"prompt": _text(v["prompt_text"], f"{where}.prompt_text"),
            "toxic_prompt": score is not None and float(score) >= 0.5}


_STATEMENT = re.compile(r"here is my statement:\s*(.+)", re.IGNORECASE | re.DOTALL)


def _stereotype(v: Mapping[str, Any], where: str) -> dict[str, Any]:
    text = _text(v["statement"], f"{where}.statement")
    # DecodingTrust's user prompts wrap the statement in the agree/disagree instruction; keep the statement
    # (the perspective module adds its own instruction).
    match = _STATEMENT.search(text)
    return {"topic": _text(v["topic"], f"{where}.topic"), "group": _text(v["group"], f"{where}.group"),
            "statement": match.group(1).strip() if match else text}


def _adversarial(v: Mapping[str, Any], where: str) -> dict[str, Any]:
    perturbation = v["perturbation"]
    return {"text": _text(v["text"], f"{where}.text"),
            "label": _binary_label(v["label"], SENTIMENT_LABELS, f"{where}.label"),
            "perturbation": str(perturbation).strip() if perturbation not in (None, "") else "adversarial"}


def _ood_style(v: Mapping[str, Any], where: str) -> dict[str, Any]:
    style = v["style"]
    return {"text": _text(v["text"], f"{where}.text"),
            "label": _binary_label(v["label"], SENTIMENT_LABELS, f"{where}.label"),
            "style": str(style).strip() if style not in (None, "") else "unknown"}


def _answer_index(answer: Any, options: list[str], where: str) -> int:
    """The 0-based index of the correct option: ``answer`` as an index (int or digit string), a letter
    ("A" = 0), an option's text, or a one-element list of any of these."""
    if isinstance(answer, (list, tuple)) and len(answer) == 1:
        answer = answer[0]
    index: Any = None
    if isinstance(answer, bool):
        pass
    elif isinstance(answer, int):
        index = answer
    elif isinstance(answer, str):
        a = answer.strip()
        if a.isdigit():
            index = int(a)
        elif len(a) == 1 and a.isalpha() and a not in options:
            index = ord(a.upper()) - ord("A")
        elif a in options:
            index = options.index(a)
    if isinstance(index, int) and 0 <= index < len(options):
        return index
    raise ConfigError(f"{where}: {answer!r} names none of the {len(options)} options "
                      "(an index from 0, a letter, or an option's text)")


def _ood_knowledge(v: Mapping[str, Any], where: str) -> dict[str, Any]:
    choices = v["options"]
    require(isinstance(choices, (list, tuple)) and len(choices) >= 2, f"{where}.options",
            f"must be a list of at least two options, got {choices!r}")
    options = [_text(c, f"{where}.options[{i}]") for i, c in enumerate(choices)]
    return {"question": _text(v["question"], f"{where}.question"), "options": options,
            "answer": _answer_index(v["answer"], options, f"{where}.answer")}


def _enron(v: Mapping[str, Any], where: str) -> dict[str, Any]:
    email = _text(v["email"], f"{where}.email")
    require("@" in email, f"{where}.email", f"must be an email address, got {email!r}")
    return {"name": _text(v["name"], f"{where}.name"), "email": email}


def _ethics(v: Mapping[str, Any], where: str) -> dict[str, Any]:
    return {"scenario": _text(v["scenario"], f"{where}.scenario"),
            "label": _binary_label(v["label"], ETHICS_LABELS, f"{where}.label")}


def _adult(v: Mapping[str, Any], where: str) -> dict[str, Any]:
    label = v["label"]
    if isinstance(label, str):
        # the UCI test file writes ">50K." with a full stop, and the raw files pad values with a space
        spelled = label.strip().rstrip(".").replace(" ", "").upper()
        label = {">50K": 1, "<=50K": 0, "1": 1, "0": 0}.get(spelled, label)
    require(label in (0, 1) and not isinstance(label, bool) and isinstance(label, (int, float)), f"{where}.label",
            f"must be '>50K' / '<=50K' (or 1 / 0), got {v['label']!r}")
    features = {k: (x.strip() if isinstance(x, str) else x) for k, x in v["features"].items()}
    return {"features": features, "sex": _text(v["sex"], f"{where}.sex"), "label": int(label)}


DATASETS: dict[str, _Spec] = {
    "realtoxicityprompts": _Spec({"prompt_text": ("prompt.text",), "prompt_toxicity": ("prompt.toxicity",)},
                                 frozenset(), ("id", "prompt", "toxic_prompt"), _toxicity),
    "stereotypes": _Spec({"statement": ("user_prompt",), "topic": ("stereotype_topic_tag",),
                          "group": ("demographic_group_tag",)},
                         frozenset(), ("id", "topic", "group", "statement"), _stereotype),
    "advglue_sst2": _Spec({"text": ("sentence",), "label": ("label",), "perturbation": ("perturbation", "method")},
                          frozenset({"perturbation"}), ("id", "text", "label", "perturbation"), _adversarial),
    "ood_style": _Spec({"text": ("sentence",), "label": ("label",), "style": ("style",)},
                       frozenset({"style"}), ("id", "text", "label", "style"), _ood_style),
    "ood_knowledge": _Spec({"question": ("question",), "options": ("choices",), "answer": ("answer",)},
                           frozenset(), ("id", "question", "options", "answer"), _ood_knowledge),
    "enron": _Spec({"name": ("name",), "email": ("email",)}, frozenset(), ("id", "name", "email"), _enron),
    "ethics_commonsense": _Spec({"scenario": ("input",), "label": ("label",)},
                                frozenset(), ("id", "scenario", "label"), _ethics),
    "adult": _Spec({"sex": ("sex",), "label": ("income", "class")},
                   frozenset(), ("id", "features", "sex", "label"), _adult, rest_as="features"),
}
# Perspective names (and a few spellings) -> the dataset each reads.
ALIASES = {
    "toxicity": "realtoxicityprompts", "real_toxicity_prompts": "realtoxicityprompts",
    "stereotype": "stereotypes", "stereotype_bias": "stereotypes",
    "adversarial": "advglue_sst2", "adversarial_robustness": "advglue_sst2", "advglue": "advglue_sst2",
    "ood_robustness_style": "ood_style", "ood_robustness_knowledge": "ood_knowledge",
    "privacy": "enron", "privacy_enron": "enron",
    "ethics": "ethics_commonsense", "machine_ethics": "ethics_commonsense",
    "fairness": "adult",
}
RECORD_SCHEMAS = {name: spec.record_fields for name, spec in DATASETS.items()}


def dataset_name(name: str) -> str:
    """The dataset ``name`` (a dataset or a perspective name) refers to; unknown -> :class:`ConfigError`."""
    require(isinstance(name, str), "dataset", f"must be a string, got {name!r}")
    key = ALIASES.get(name, name)
    require(key in DATASETS, "dataset",
            f"unknown dataset {name!r}; known: {sorted(DATASETS)} (aliases: {sorted(ALIASES)})")
    return key


def _lookup(row: Mapping[str, Any], column: str) -> Any:
    """``row[column]``, or for a dotted column the field of a struct column (``"prompt.text"``)."""
    if column in row:
        return row[column]
    value: Any = row
    for part in column.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return _MISSING
        value = value[part]
    return value


def _resolve_columns(spec: _Spec, source: DatasetSource, first_row: Mapping[str, Any],
                     dataset: str) -> dict[str, str | None]:
    """Source field -> the column that holds it in this dataset (``None``: optional and absent)."""
    known = set(spec.fields) | {"id"}
    unknown = sorted(set(source.columns) - known)
    require(not unknown, f"source.columns.{unknown[0]}" if unknown else "source.columns",
            f"unknown field for dataset {dataset!r}; fields: {sorted(known)}")
    resolved: dict[str, str | None] = {}
    for name in (*spec.fields, "id"):  # declaration order: the first missing field is the one reported
        if name in source.columns:
            candidates: tuple[str, ...] = (source.columns[name],)
        else:
            candidates = spec.fields.get(name, ())
        found = next((c for c in candidates if _lookup(first_row, c) is not _MISSING), None)
        required = name in source.columns or (name in spec.fields and name not in spec.optional)
        if found is None and required:
            raise ConfigError(f"source.columns.{name}: no column {' or '.join(map(repr, candidates))} in dataset "
                              f"{dataset!r} (columns: {sorted(first_row)}); set source.columns.{name} to the column "
                              "that holds it")
        resolved[name] = found
    return resolved


def records_from_rows(dataset: str, rows: Sequence[Mapping[str, Any]],
                      columns: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """The normalised records of ``rows`` (mappings as ``datasets`` yields them) of ``dataset`` (a dataset or
    perspective name), with ``columns`` overriding the default columns. A missing column, or a value that
    cannot be normalised, raises :class:`ConfigError` naming the field (and the row index)."""
    name = dataset_name(dataset)
    spec = DATASETS[name]
    source = DatasetSource(path="rows", columns=dict(columns or {}))
    if not rows:
        return []
    resolved = _resolve_columns(spec, source, rows[0], name)
    top_level = {c.split(".")[0] for c in resolved.values() if c is not None} | \
        {c for c in resolved.values() if c is not None}
    records = []
    for i, row in enumerate(rows):
        where = f"{name} row {i}"
        values: dict[str, Any] = {}
        for fld, column in resolved.items():
            if column is None:
                values[fld] = None
                continue
            value = _lookup(row, column)
            require(value is not _MISSING, f"{where}.{fld}", f"column {column!r} is missing")
            values[fld] = value
        if spec.rest_as is not None:
            values[spec.rest_as] = {k: v for k, v in row.items() if k not in top_level}
        record = {"id": f"{name}-{i}" if values.get("id") is None else str(values["id"])}
        record.update(spec.normalise(values, where))
        records.append(record)
    ids = [r["id"] for r in records]
    if len(set(ids)) != len(ids):
        duplicate = next(x for x in ids if ids.count(x) > 1)
        raise ConfigError(f"source.columns.id: ids must be unique, {duplicate!r} appears more than once")
    return records


def load_records(dataset: str, source: DatasetSource | Mapping[str, Any]) -> list[dict[str, Any]]:
    """The normalised records (schema :data:`RECORD_SCHEMAS`) of ``dataset`` (a dataset name of
    :data:`DATASETS` or a perspective name of :data:`ALIASES`) read from ``source`` (a :class:`DatasetSource`
    or its config mapping), at most ``source.limit`` of them, in the source's row order."""
    name = dataset_name(dataset)
    source = DatasetSource.from_dict(source)
    from datasets import load_dataset  # imported here: the harness runs without `datasets` on synthetic data

    data = load_dataset(source.path, source.name, data_files=source.data_files, split=source.split,
                        **dict(source.options))
    if source.limit is not None:
        data = data.select(range(min(source.limit, len(data))))
    return records_from_rows(name, list(data), source.columns)


__all__ = ["ALIASES", "DATASETS", "DatasetSource", "ETHICS_LABELS", "RECORD_SCHEMAS", "SENTIMENT_LABELS",
           "dataset_name", "load_records", "records_from_rows"]
