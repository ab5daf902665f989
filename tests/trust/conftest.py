"""Shared by the trust tests: the hub switched off wherever a test reads a dataset, so a mistake in a source fails
here instead of reaching the network."""

import pytest

from nvrepro.core.tooling.paths import REPO_ROOT

FIXTURES = REPO_ROOT / "tests" / "trust" / "fixtures"


@pytest.fixture
def offline(monkeypatch):
    # `datasets` may have been imported (online) by another test module: switch its flags off too
    import datasets.config
    import huggingface_hub.constants

    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_OFFLINE", True, raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
