"""Local JSONL records: the full-scale switch of the vision-language datamodules.

A paper's toy data is generated; at full scale the same datamodule reads records converted to JSONL
(one JSON object per line) from local disk. :func:`read_jsonl` reads them with the checks every reader
needs: the file exists and holds records, each record has the required fields (the error names the
line), and file paths inside records are resolved against the JSONL file's folder.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

from nvrepro.core.tooling.validation import ConfigError


def read_jsonl(path: str | Path, required: Sequence[str], path_fields: Sequence[str] = ()) -> list[dict]:
    """The records of the JSONL file ``path``. Every record must hold the ``required`` fields; each field of
    ``path_fields`` (a path or a list of paths) is resolved against the file's folder. Clear errors for a
    missing file, an empty one, a line that is not JSON, and a record that lacks a field."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"path: no such file {str(path)!r}")
    records = []
    for line_no, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise ConfigError(f"path: {path.name} line {line_no} is not JSON ({err.msg})") from None
        missing = [k for k in required if k not in record]
        if missing:
            raise ConfigError(f"path: {path.name} line {line_no} lacks {missing}")
        for field in path_fields:
            value = record.get(field)
            if isinstance(value, list):
                record[field] = [str((path.parent / v).resolve()) for v in value]
            elif value is not None:
                record[field] = str((path.parent / value).resolve())
        records.append(record)
    if not records:
        raise ConfigError(f"path: {str(path)!r} holds no records")
    return records
