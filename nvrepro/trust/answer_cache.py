"""An on-disk cache of model answers, so a rerun of the harness questions no model twice.

The key of a probe's answers is ``sha256`` of the JSON of ``[adapter.name, the probe's messages,
settings.to_dict()]``: the adapter's name carries its weights' fingerprint (:mod:`nvrepro.trust.adapters`), so a
retrained model misses the cache; the probe's id, scenario and target are not part of the key (they do not change
what the model sees). Each key's answers are one JSON file ``<cache_dir>/<key[:2]>/<key>.json`` holding the key's
inputs and ``answers``, written atomically (a crash never leaves half a file; several processes may share a cache).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Sequence

from nvrepro.core.tooling.validation import require
from nvrepro.trust.types import GenerationSettings, Message, Probe


def _messages(probe: Probe | Sequence[Message]) -> tuple[Message, ...]:
    return tuple(probe.messages) if isinstance(probe, Probe) else tuple(probe)


def answer_key(adapter_name: str, messages: Sequence[Message], settings: GenerationSettings) -> str:
    """Hex sha256 of the UTF-8 bytes of ``json.dumps([adapter_name, [m.to_dict() ...], settings.to_dict()],
    sort_keys=True, ensure_ascii=False)``."""
    blob = json.dumps([adapter_name, [m.to_dict() for m in messages], settings.to_dict()], sort_keys=True,
                      ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def _path(cache_dir: Path, key: str) -> Path:
    return cache_dir / key[:2] / f"{key}.json"


def _read(path: Path, num_samples: int) -> list[str] | None:
    """The cached answers at ``path``, or None when the file is absent or unreadable (then it is recomputed)."""
    try:
        answers = json.loads(path.read_text(encoding="utf-8"))["answers"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    ok = isinstance(answers, list) and len(answers) == num_samples and all(isinstance(a, str) for a in answers)
    return answers if ok else None


def _write(path: Path, record: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(record, ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, path)


def cached_answers(adapter, probes: Sequence[Probe | Sequence[Message]], settings: GenerationSettings,
                   cache_dir: str | os.PathLike | None = None, progress: bool = False,
                   chunk_size: int | None = None) -> list[list[str]]:
    """``settings.num_samples`` answers of ``adapter`` per probe (a :class:`Probe` or a bare chat), in order.

    Answers found under ``cache_dir`` are read back; only the missing chats (each distinct chat once) go to
    ``adapter.answer``: in one call, or in calls of ``chunk_size`` chats (each chunk is stored as soon as it is
    answered, so an interrupted run keeps its work). ``cache_dir=None``: no cache, every chat is asked.
    ``progress``: a tqdm bar over the missing chats.
    """
    require(chunk_size is None or (isinstance(chunk_size, int) and chunk_size >= 1), "chunk_size",
            f"must be a positive integer or None, got {chunk_size!r}")
    name = getattr(adapter, "name", None)
    require(isinstance(name, str) and bool(name), "adapter.name", f"must be a non-empty string, got {name!r}")
    chats = [_messages(p) for p in probes]
    keys = [answer_key(name, c, settings) for c in chats]
    root = Path(cache_dir).expanduser() if cache_dir is not None else None
    found: dict[str, list[str]] = {}
    if root is not None:
        for key in dict.fromkeys(keys):
            answers = _read(_path(root, key), settings.num_samples)
            if answers is not None:
                found[key] = answers
    missing = [k for k in dict.fromkeys(keys) if k not in found]  # distinct, in first-seen order
    if missing:
        chat_of = dict(zip(keys, chats))
        step = chunk_size or len(missing)
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(missing), desc=f"answers from {name}", unit="chat")
        try:
            for start in range(0, len(missing), step):
                part = missing[start:start + step]
                got = adapter.answer([chat_of[k] for k in part], settings)
                _check(got, len(part), settings.num_samples, name)
                for key, answers in zip(part, got):
                    found[key] = list(answers)
                    if root is not None:
                        _write(_path(root, key), {"adapter": name, "settings": settings.to_dict(),
                                                  "messages": [m.to_dict() for m in chat_of[key]],
                                                  "answers": list(answers)})
                if bar is not None:
                    bar.update(len(part))
        finally:
            if bar is not None:
                bar.close()
    return [list(found[k]) for k in keys]


def _check(got: Any, n_chats: int, num_samples: int, name: str) -> None:
    """Raise ValueError unless ``got`` holds ``num_samples`` strings for each of ``n_chats`` chats."""
    if not isinstance(got, list) or len(got) != n_chats:
        raise ValueError(f"adapter {name!r}: answer() returned {len(got) if isinstance(got, list) else got!r} "
                         f"answer lists for {n_chats} chats")
    for i, answers in enumerate(got):
        if len(answers) != num_samples or not all(isinstance(a, str) for a in answers):
            raise ValueError(f"adapter {name!r}: answer() gave chat {i} {len(answers)} answers; expected "
                             f"{num_samples} strings (settings.num_samples)")
