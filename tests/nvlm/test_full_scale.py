"""Full-scale NVLM configs: Qwen2-72B-Instruct + InternViT-6B-448px-V1-5 counted on the meta device against
the published sizes, the paper's layer placement, and the image tokens of 6 tiles + thumbnail."""

import pytest

from nvrepro.cli import main
from nvrepro.core.lm.config import model_config_from_yaml
from nvrepro.core.lm.info import count_parameters
from nvrepro.core.tooling.paths import CONFIGS_DIR
from nvrepro.nvlm.model import NVLMConfig, text_config
from nvrepro.nvlm.tile_tags import image_token_counts

# Published: Qwen2-72B-Instruct 72.7B (its config's shapes with q/k/v biases give 72.706B; ours has none, 0.8M
# fewer), InternViT-6B-448px-V1-5 5.54B (its model card: 48 blocks less the last 3), NVLM-D-72B's mlp1
# LayerNorm(12800) -> 12800 x 29568 -> 29568 x 8192 = 620.7M (its checkpoint's shapes).
QWEN2_72B = 72.71e9
INTERNVIT_V15 = 5.54e9
MLP1 = 620_717_056


@pytest.mark.parametrize("arch", ["d", "x", "h"])
def test_72b_parts_match_the_published_sizes(arch):
    cfg = model_config_from_yaml(CONFIGS_DIR / "nvlm" / f"nvlm_{arch}_72b.yaml")
    assert isinstance(cfg, NVLMConfig) and cfg.architecture == arch.upper()
    llm_total, _ = count_parameters(text_config(cfg))
    assert abs(llm_total / QWEN2_72B - 1) < 0.001
    _, breakdown = count_parameters(cfg)
    assert abs(breakdown["vision"] / INTERNVIT_V15 - 1) < 0.005
    if arch == "x":  # a 1-layer projector 12800 -> 8192 (Sec. 4.5)
        assert breakdown["projector"] == 2 * 12800 + 12800 * 8192
    else:
        assert breakdown["projector"] == MLP1
    # Sec. 4.5: ten gated cross-attention layers in X and H, one after every 8 of the 80 LLM layers
    assert cfg.count("X") == (0 if arch == "d" else 10) and cfg.count("*") == 80
    assert cfg.tokens_per_tile == 256


def test_six_tiles_and_a_thumbnail_give_table_3s_sequence_lengths():
    # Table 3 (34B, same tiling): LLM sequence length X 1,024, H 1,280, D 2,816 with 6 tiles + thumbnail:
    # the text budget of X plus the image tokens each architecture puts in the decoder.
    counts = image_token_counts((3, 2), 256)
    assert {a: c["decoder"] for a, c in counts.items()} == {"D": 1792, "X": 0, "H": 256}
    assert 1024 + counts["D"]["decoder"] == 2816 and 1024 + counts["H"]["decoder"] == 1280


def test_info_prints_the_vision_side_and_image_tokens(capsys):
    assert main(["info", "--config", str(CONFIGS_DIR / "nvlm" / "nvlm_h_72b.yaml")]) == 0
    out = capsys.readouterr().out
    assert "vision" in out and "projector" in out and "cross_attention" in out
    assert "NVLM-H:    256 in the decoder,  1,536 through cross-attention" in out
