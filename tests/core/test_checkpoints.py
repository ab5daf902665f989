"""The weights cache under build/: keys, a weights_only round trip, atomic writes."""

from __future__ import annotations

import torch

from nvrepro.core.checkpoints import (
    BUILD_DIR,
    cache_key,
    cache_path,
    load_cached,
    save_cached,
)


def test_cache_key_is_stable_and_sensitive():
    assert cache_key("yaml text", {"b": 1, "a": [2, 3]}, 0) == cache_key("yaml text", {"a": [2, 3], "b": 1}, 0)
    assert len(cache_key("x")) == 16
    assert cache_key("yaml text", {}, 0) != cache_key("yaml text", {}, 1)  # seed
    assert cache_key("max_steps: 10", 0) != cache_key("max_steps: 11", 0)  # steps in the YAML


def test_cache_path_is_under_build_unless_absolute(tmp_path):
    rel = cache_path("demo", "arm", 1, 2)
    assert rel.parent == BUILD_DIR / "demo" and rel.name == f"arm-{cache_key(1, 2)}.pt"
    assert cache_path(tmp_path, "arm", 1).parent == tmp_path


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
