"""Full-scale Cosmos-Reason1 configs counted on the meta device: the LLM equals the Nemotron-H backbone of
configs/hybrid (same widths), the ViT matches InternViT's published size, the projector its closed form."""

import pytest

from nvrepro.cli import main
from nvrepro.core.lm.config import model_config_from_yaml
from nvrepro.core.lm.info import count_parameters
from nvrepro.core.multimodal.vlm import VisionLMConfig
from nvrepro.core.tooling.paths import CONFIGS_DIR

# Published sizes: InternViT-300M-448px-V2.5 0.3B, InternViT-6B-448px-V2.5 5.5B
# (5.54B for the 45 blocks used, as in NVLM's count).
VIT = {"8b": 304e6, "56b": 5.54e9}


@pytest.mark.parametrize("size", ["8b", "56b"])
@pytest.mark.parametrize("stage", ["sft", "rl"])
def test_parts_match_the_backbone_and_the_published_vit(size, stage):
    cfg = model_config_from_yaml(CONFIGS_DIR / "cosmos" / f"cosmos_reason1_{size}_{stage}.yaml")
    assert isinstance(cfg, VisionLMConfig) and cfg.tokens_per_tile == 256
    backbone = model_config_from_yaml(CONFIGS_DIR / "hybrid" / f"nemotron_h_{size}.yaml")
    assert cfg.pattern == backbone.pattern and cfg.d_model == backbone.d_model
    llm, _ = count_parameters(backbone)
    total, parts = count_parameters(cfg)
    assert total == llm + parts["vision"] + parts["projector"]
    assert abs(parts["vision"] / VIT[size] - 1) < 0.01
    c, d = cfg.vision.d_model * 4, cfg.d_model  # LayerNorm(4C) -> 4C x d -> d x d, with biases
    assert parts["projector"] == 2 * c + (c * d + d) + (d * d + d)


def test_info_prints_the_counts():
    assert main(["info", "--config", str(CONFIGS_DIR / "cosmos" / "cosmos_reason1_8b_sft.yaml")]) == 0
