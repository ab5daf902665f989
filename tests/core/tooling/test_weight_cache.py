"""The weights cache under build/: keys, a weights_only round trip, atomic writes."""

from __future__ import annotations

import sys
import textwrap

import pytest
import torch

from nvrepro.core.tooling import weight_cache as checkpoints
from nvrepro.core.tooling.weight_cache import (
    BUILD_DIR,
    cache_key,
    cache_path,
    code_version,
    load_cached,
    save_cached,
    use_cache,
)


def test_cache_key_is_stable_and_sensitive():
    assert cache_key("yaml text", {"b": 1, "a": [2, 3]}, 0) == cache_key("yaml text", {"a": [2, 3], "b": 1}, 0)
    assert len(cache_key("x")) == 16
    assert cache_key("yaml text", {}, 0) != cache_key("yaml text", {}, 1)  # seed
    assert cache_key("max_steps: 10", 0) != cache_key("max_steps: 11", 0)  # steps in the YAML


def test_cache_path_is_under_build_unless_absolute(tmp_path):
    rel = cache_path("demo", "arm", 1, 2)
    assert rel.parent == BUILD_DIR / "demo" and rel.name.startswith("arm-") and rel.suffix == ".pt"
    assert cache_path(tmp_path, "arm", 1).parent == tmp_path
    assert cache_path("demo", "arm", 1, 2) == rel and cache_path("demo", "arm", 1, 3) != rel


def test_only_the_paper_profile_uses_the_cache():
    assert use_cache("paper") is True and use_cache("paper", False) is False
    assert use_cache("smoke") is False and use_cache("smoke", False) is False
    with pytest.raises(ValueError, match="cache: only the paper profile"):
        use_cache("smoke", True)


@pytest.fixture
def toy_package(tmp_path, monkeypatch):
    """A throwaway package ``toy_trainer`` on sys.path, whose source a test can rewrite."""
    pkg = tmp_path / "toy_trainer"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield pkg
    sys.modules.pop("toy_trainer", None)


def _version_of(pkg, source: str) -> str:
    (pkg / "train.py").write_text(textwrap.dedent(source))
    checkpoints._package_version.cache_clear()
    return code_version(["toy_trainer"])


def test_code_version_follows_the_code_not_its_comments(toy_package):
    base = _version_of(toy_package, '''
        def step(lr):
            """One step."""
            return lr * 2
    ''')
    reworded = _version_of(toy_package, '''
        # a comment, a new docstring and blank lines change nothing that runs


        def step(lr):
            """One step of plain SGD."""
            return lr * 2
    ''')
    fixed = _version_of(toy_package, '''
        def step(lr):
            """One step."""
            return lr * 3
    ''')
    assert reworded == base
    assert fixed != base  # a bug fix gives a new cache key: stale weights are never reused


def test_cache_path_changes_with_the_code_that_trains(monkeypatch):
    before = cache_path("demo", "arm", 1)
    monkeypatch.setattr(checkpoints, "code_version", lambda packages=(): "0123456789abcdef")
    assert cache_path("demo", "arm", 1) != before


def test_code_version_names_an_unknown_package():
    with pytest.raises(ValueError, match="no importable package"):
        code_version(["nvrepro.no_such_track"])


def test_save_then_load_weights_only(tmp_path):
    path = tmp_path / "sub" / "arm-key.pt"
    assert load_cached(path) is None
    payload = {"state_dict": {"w": torch.arange(6.0).view(2, 3)}, "curve": {"step": [1, 2], "val/loss": [2.5, float("nan")]},
               "steps": 2, "seconds": 0.5}
    save_cached(path, payload)
    assert [p.name for p in path.parent.iterdir()] == ["arm-key.pt"], "no temporary file left behind"
    back = load_cached(path)
    assert torch.equal(back["state_dict"]["w"], payload["state_dict"]["w"])
    assert back["curve"]["step"] == [1, 2] and back["steps"] == 2 and back["seconds"] == 0.5
