"""Full-scale Retro configs: the published sizes, counted on the meta device, and the layer rule."""

import pytest

from nvrepro.cli import main
from nvrepro.core.lm.config import model_config_from_yaml
from nvrepro.core.lm.info import count_parameters
from nvrepro.core.tooling.paths import CONFIGS_DIR
from nvrepro.retro.model import RetroConfig, gpt_config, retro_pattern

# (config, decoder layers, published total, published size of its GPT or None); sizes from the
# papers' abstracts: Retro 48B from the 43B GPT (InstructRetro), RETRO "up to 9.5B" (the study).
CASES = [("retro_48b", 48, 48e9, 43e9), ("retro_xxl_9b", 40, 9.5e9, None)]


@pytest.mark.parametrize("name, layers, published, published_gpt", CASES, ids=[c[0] for c in CASES])
def test_counts_match_the_published_sizes(name, layers, published, published_gpt):
    cfg = model_config_from_yaml(CONFIGS_DIR / "retro" / f"{name}.yaml")
    assert isinstance(cfg, RetroConfig) and cfg.pattern == retro_pattern(layers)
    assert (cfg.chunk_len, cfg.num_neighbours, cfg.encoder_layers) == (64, 2, 2)  # the facts sheet
    total, breakdown = count_parameters(cfg)
    assert abs(total / published - 1) < 0.03, f"{name}: {total / 1e9:.2f}B vs published {published / 1e9:.1f}B"
    assert breakdown["encoder"] > 0 and breakdown["chunked_cross_attention"] > 0
    if published_gpt:
        gpt_total, _ = count_parameters(gpt_config(cfg))
        assert abs(gpt_total / published_gpt - 1) < 0.03


def test_info_prints_the_encoder(capsys):
    assert main(["info", "--config", str(CONFIGS_DIR / "retro" / "retro_xxl_9b.yaml")]) == 0
    out = capsys.readouterr().out
    assert "encoder" in out and "chunked_cross_attention" in out and "(9.54B)" in out
