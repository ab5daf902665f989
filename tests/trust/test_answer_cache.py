"""The answer cache: a rerun questions no model, only missing chats are asked, keys separate models and settings."""

from __future__ import annotations

import hashlib
import json

import pytest

from nvrepro.trust.answer_cache import answer_key, cached_answers
from nvrepro.trust.types import GenerationSettings, Probe, chat

SETTINGS = GenerationSettings(temperature=1.0, num_samples=2, max_new_tokens=8, seed=3)


class CountingAdapter:
    """A deterministic fake that records the chats of every ``answer`` call."""

    def __init__(self, name="fake@abc"):
        self.name = name
        self.calls: list[list[str]] = []

    def answer(self, chats, settings):
        self.calls.append([c[-1].content for c in chats])
        return [[f"{self.name}:{c[-1].content}:{settings.seed}:{j}" for j in range(settings.num_samples)]
                for c in chats]


def probes(*questions, perspective="toxicity"):
    return [Probe(perspective, f"p{i}", "benign", chat("sys", q)) for i, q in enumerate(questions)]


def expected(name, questions, settings=SETTINGS):
    return [[f"{name}:{q}:{settings.seed}:{j}" for j in range(settings.num_samples)] for q in questions]


def test_rerun_asks_nothing_and_only_missing_chats_are_sent(tmp_path):
    fake = CountingAdapter()
    qs = ["a", "b", "c", "b"]  # "b" twice: asked once
    assert cached_answers(fake, probes(*qs), SETTINGS, tmp_path) == expected(fake.name, qs)
    assert fake.calls == [["a", "b", "c"]]
    assert len(list(tmp_path.rglob("*.json"))) == 3

    fake2 = CountingAdapter()  # another object, same model name: reads the cache
    assert cached_answers(fake2, probes(*qs), SETTINGS, tmp_path) == expected(fake.name, qs)
    assert fake2.calls == []

    more = ["d", "a", "e", "c"]
    assert cached_answers(fake2, probes(*more), SETTINGS, tmp_path) == expected(fake.name, more)
    assert fake2.calls == [["d", "e"]]


def test_key_separates_models_and_settings_not_probe_labels(tmp_path):
    fake = CountingAdapter()
    cached_answers(fake, probes("a"), SETTINGS, tmp_path)
    other_seed = GenerationSettings(temperature=1.0, num_samples=2, max_new_tokens=8, seed=4)
    assert cached_answers(fake, probes("a"), other_seed, tmp_path) == expected(fake.name, ["a"], other_seed)
    retrained = CountingAdapter("fake@def")
    assert cached_answers(retrained, probes("a"), SETTINGS, tmp_path) == expected("fake@def", ["a"])
    assert fake.calls == [["a"], ["a"]] and retrained.calls == [["a"]]
    # id, scenario, perspective and target do not change what the model sees: same key, no call
    relabelled = [Probe("privacy", "other-id", "adversarial", chat("sys", "a"), target="x", meta={"k": 1})]
    assert cached_answers(fake, relabelled, SETTINGS, tmp_path) == expected(fake.name, ["a"])
    assert len(fake.calls) == 2
    # the documented key and file layout, computed by hand
    msgs = [{"role": "system", "content": "sys"}, {"role": "user", "content": "a"}]
    key = hashlib.sha256(json.dumps(["fake@abc", msgs, SETTINGS.to_dict()], sort_keys=True).encode()).hexdigest()
    assert answer_key("fake@abc", chat("sys", "a"), SETTINGS) == key
    record = json.loads((tmp_path / key[:2] / f"{key}.json").read_text())
    assert record["answers"] == expected(fake.name, ["a"])[0] and record["messages"] == msgs


def test_no_cache_dir_asks_every_time_and_bare_chats(tmp_path):
    fake = CountingAdapter()
    chats = [chat(None, "x"), chat(None, "y")]
    for _ in range(2):
        assert cached_answers(fake, chats, SETTINGS) == expected(fake.name, ["x", "y"])
    assert fake.calls == [["x", "y"], ["x", "y"]]
    assert cached_answers(fake, [], SETTINGS, tmp_path) == [] and len(fake.calls) == 2


def test_corrupt_entries_are_recomputed_and_chunks_stored_as_they_come(tmp_path):
    fake = CountingAdapter()
    cached_answers(fake, probes("a", "b"), SETTINGS, tmp_path)
    bad = tmp_path / answer_key(fake.name, chat("sys", "b"), SETTINGS)[:2]
    next(bad.glob("*.json")).write_text("{truncated")
    qs = ["a", "b", "c", "d", "e"]
    got = cached_answers(fake, probes(*qs), SETTINGS, tmp_path, progress=True, chunk_size=2)
    assert got == expected(fake.name, qs)
    assert fake.calls[1:] == [["b", "c"], ["d", "e"]]


def test_bad_adapter_output_is_an_error_and_not_cached(tmp_path):
    class Short(CountingAdapter):
        def answer(self, chats, settings):
            return [["only one"] for _ in chats]

    with pytest.raises(ValueError, match="num_samples"):
        cached_answers(Short(), probes("a"), SETTINGS, tmp_path)
    with pytest.raises(ValueError, match="chunk_size"):
        cached_answers(Short(), probes("a"), SETTINGS, tmp_path, chunk_size=0)
    assert list(tmp_path.rglob("*.json")) == []
