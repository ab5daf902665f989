"""The full-scale Flower App (configs/fl/full_scale): its run config is a valid DPFedAvg setting, the
model builds at its size on the meta device, and the privacy it spends is a meaningful guarantee."""

import json
import tomllib
from pathlib import Path

import pytest
import torch

from nvrepro.core.data.tokenizers import train_bpe_tokenizer
from nvrepro.core.lm.config import ModelConfig
from nvrepro.core.lm.model import build_model
from nvrepro.core.tooling.validation import ConfigError
from nvrepro.fl.accounting import epsilon, epsilon_for_rounds
from nvrepro.fl.server import DPFedAvgSettings

APP = Path(__file__).resolve().parents[2] / "configs" / "fl" / "full_scale" / "pyproject.toml"


@pytest.fixture(scope="module")
def run_config():
    return tomllib.loads(APP.read_text())["tool"]["flwr"]["app"]["config"]


def test_the_app_points_at_the_nvrepro_apps():
    components = tomllib.loads(APP.read_text())["tool"]["flwr"]["app"]["components"]
    assert components == {"serverapp": "nvrepro.fl.server:app", "clientapp": "nvrepro.fl.client:app"}


def test_run_config_is_a_valid_setting(run_config, tmp_path):
    """With local stand-ins for the two paths (a tokenizer of the config's vocabulary, a users dataset
    of the config's size would be too large: the users check is exercised in test_task.py)."""
    cfg = ModelConfig.from_dict(json.loads(run_config["model-config"]))
    tok = train_bpe_tokenizer(["a b c d e f g h"] * 10, 300)
    tok.save(tmp_path / "tokenizer.json")
    local = dict(run_config, tokenizer=str(tmp_path / "tokenizer.json"), **{"user-data": ""})
    s = DPFedAvgSettings.from_run_config(local)
    assert s.sampling == "poisson" and s.num_users == run_config["num-users"]
    assert ModelConfig.from_dict(s.model_config).to_dict() == cfg.to_dict()
    with pytest.raises(ConfigError, match="clip-norms"):
        DPFedAvgSettings.from_run_config(dict(local, **{"clip-norms": 1.0}))


def test_model_size_and_privacy(run_config):
    cfg = ModelConfig.from_dict(json.loads(run_config["model-config"]))
    with torch.device("meta"):
        params = sum(p.numel() for p in build_model(cfg).parameters())
    assert 10e6 < params < 100e6  # an on-device LM: tens of millions of parameters
    n, m, t, z = (run_config[k] for k in ("num-users", "clients-per-round", "rounds", "noise-multiplier"))
    delta = 1e-6  # below 1 / N
    eps = epsilon(z, m / n, t, delta)
    assert eps < 2.0, f"user-level epsilon {eps:.2f} at delta {delta}"
    # the same noise with Flower's fixed-size sampling would be a weaker (replace-one) guarantee
    assert epsilon_for_rounds(z, m, n, t, delta, sampling="fixed") > eps
