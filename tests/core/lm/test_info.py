"""Parameter counts and cache memory against closed forms and the papers' published sizes."""


import pytest

from nvrepro.core.lm.config import ModelConfig, model_config_from_yaml
from nvrepro.core.lm.info import count_parameters, main, model_info
from nvrepro.core.tooling.paths import CONFIGS_DIR

CONFIGS = CONFIGS_DIR / "hybrid"


def closed_form_params(c: ModelConfig) -> int:
    """Count by hand from the architecture description (Nemotron-H Sec. 2.1, Mamba-2 Sec. 7)."""
    d, m, a, f = c.d_model, c.mamba, c.attention, c.ffn
    di = m.n_heads * m.head_dim
    conv_dim = di + 2 * m.n_groups * m.d_state
    mamba = (d * (2 * di + 2 * m.n_groups * m.d_state + m.n_heads)  # in_proj -> z, xBC, dt
             + conv_dim * m.d_conv + conv_dim                         # depthwise conv + bias
             + 3 * m.n_heads                                          # dt_bias, A_log, D
             + di                                                     # gated norm
             + di * d)                                                # out_proj
    attn = d * a.n_heads * a.head_dim * 2 + d * a.n_kv_heads * a.head_dim * 2
    ffn = (3 if f.activation == "swiglu" else 2) * d * f.hidden
    per_layer = {"M": mamba, "*": attn, "-": ffn}
    layers = sum(per_layer[k] + d for k in c.pattern)  # + d: each block's pre-norm
    embeddings = c.vocab_size * d * (1 if c.tie_embeddings else 2)
    return embeddings + layers + d  # + final norm


@pytest.mark.parametrize("name,published", [
    ("nemotron_h_8b", 8.1e9), ("nemotron_h_56b", 56.3e9), ("nemotron_h_47b", 46.9e9),
    ("llama_3_1_8b", 8.03e9), ("llama_3_1_70b", 70.6e9),
])
def test_full_scale_configs_have_the_published_sizes(name, published):
    cfg = model_config_from_yaml(CONFIGS / f"{name}.yaml")
    total, _ = count_parameters(cfg)
    assert total == closed_form_params(cfg)
    assert abs(total - published) / published < 0.01, f"{name}: {total:,} vs {published:,.0f}"


def test_nemotron_h_layer_counts():
    counts = {n: model_config_from_yaml(CONFIGS / f"nemotron_h_{n}.yaml") for n in ("8b", "56b", "47b")}
    assert [(c.count("M"), c.count("*"), c.count("-")) for c in counts.values()] == \
        [(24, 4, 24), (54, 10, 54), (44, 5, 49)]
    assert counts["8b"].pattern == "M-M-M-M*-M-M-M-M-M*-M-M-M-M-M*-M-M-M-M-M*-M-M-M-M-M-"


def test_cache_memory_closed_form():
    cfg = model_config_from_yaml(CONFIGS / "nemotron_h_8b.yaml")
    info = model_info(cfg, context=65536, batch=2, cache_dtype="bf16")
    # K and V, 4 attention layers, 8 KV heads of 128 channels, 2 bytes each.
    assert info.kv_cache_bytes == 2 * 4 * 2 * 65536 * 8 * 128 * 2
    m = cfg.mamba
    conv = 2 * (m.n_heads * m.head_dim + 2 * m.n_groups * m.d_state) * m.d_conv * 2
    ssm = 2 * m.n_heads * m.head_dim * m.d_state * 4
    assert info.ssm_state_bytes == 24 * (conv + ssm)
    # The Mamba state does not grow with context; the KV cache grows linearly.
    longer = model_info(cfg, context=131072, batch=2)
    assert longer.ssm_state_bytes == info.ssm_state_bytes
    assert longer.kv_cache_bytes == 2 * info.kv_cache_bytes


def test_hybrid_cache_is_much_smaller_than_llama_at_64k():
    hybrid = model_info(model_config_from_yaml(CONFIGS / "nemotron_h_8b.yaml"), context=65536)
    llama = model_info(model_config_from_yaml(CONFIGS / "llama_3_1_8b.yaml"), context=65536)
    assert llama.cache_bytes / hybrid.cache_bytes > 5


def test_info_cli_prints_counts(capsys):
    assert main(["--config", str(CONFIGS / "nemotron_h_8b.yaml"), "--context", "65536"]) == 0
    out = capsys.readouterr().out
    assert "8,100,852,736" in out and "KV cache" in out


def test_info_rejects_bad_arguments():
    cfg = model_config_from_yaml(CONFIGS / "nemotron_h_8b.yaml")
    with pytest.raises(ValueError, match="context"):
        model_info(cfg, context=0)
    with pytest.raises(FileNotFoundError, match="config"):
        model_config_from_yaml("no/such.yaml")
