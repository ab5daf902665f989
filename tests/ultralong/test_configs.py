"""UltraLong configs: Llama-3.1-8B's size, YaRN scales for 1M/2M/4M, KV-cache memory, toy arms."""


import pytest

from nvrepro.core.lm.config import model_config_from_yaml
from nvrepro.core.lm.info import count_parameters, main, model_info
from nvrepro.core.tooling.paths import CONFIGS_DIR

CONFIGS = CONFIGS_DIR
FULL = {"1m": (128, 2**20), "2m": (256, 2**21), "4m": (512, 2**22)}


@pytest.mark.parametrize("tag", FULL)
def test_ultralong_is_llama_3_1_8b_with_yarn(tag):
    s, context = FULL[tag]
    cfg = model_config_from_yaml(CONFIGS / "ultralong" / f"ultralong_8b_{tag}.yaml")
    llama = model_config_from_yaml(CONFIGS / "hybrid" / "llama_3_1_8b.yaml")
    total, _ = count_parameters(cfg)
    assert total == count_parameters(llama)[0]
    assert abs(total - 8.03e9) / 8.03e9 < 0.005  # Llama-3.1-8B's published size
    a = cfg.attention
    assert (a.rope_scaling, a.rope_factor, a.rope_theta) == ("yarn", s, llama.attention.rope_theta)
    assert a.rope_original_max_len * s == cfg.max_seq_len == context  # s x 8K = 1M / 2M / 4M
    # KV cache, bf16: K and V x 32 layers x 8 KV heads x 128 channels x 2 bytes = 128 KiB per token.
    info = model_info(cfg, context=context, batch=1, cache_dtype="bf16")
    assert info.kv_cache_bytes == context * 2 * 32 * 8 * 128 * 2 == (s // 128) * 128 * 2**30


def test_info_cli_reports_the_1m_cache(capsys):
    assert main(["--config", str(CONFIGS / "ultralong" / "ultralong_8b_1m.yaml"), "--context", str(2**20)]) == 0
    out = capsys.readouterr().out
    assert "8,030,261,248" in out and "128.0 GiB" in out


def test_toy_arms_differ_only_in_rope_scaling():
    base = model_config_from_yaml(CONFIGS / "ultralong" / "toy_base.yaml")
    arms = {m: model_config_from_yaml(CONFIGS / "ultralong" / f"toy_extend_{m}.yaml")
            for m in ("none", "linear", "ntk", "yarn")}
    for method, cfg in arms.items():
        assert cfg.attention.rope_scaling == method
        assert cfg.max_seq_len == 8 * base.max_seq_len
        same = dict(cfg.to_dict(), max_seq_len=base.max_seq_len)
        same["attention"] = {k: v for k, v in same["attention"].items() if not k.startswith("rope_") or k == "rope_theta"}
        ref = base.to_dict()
        ref["attention"] = {k: v for k, v in ref["attention"].items() if not k.startswith("rope_") or k == "rope_theta"}
        assert same == ref, method
    assert arms["yarn"].attention.rope_original_max_len == base.max_seq_len
    assert {a.attention.rope_factor for m, a in arms.items() if m != "none"} == {8.0}
