"""The pattern-built LM: cached decoding equals full forwards, generation, and bad input."""

import pytest
import torch

from nvrepro.core.lm.config import ConfigError, ModelConfig
from nvrepro.core.lm.model import build_model

SMALL = dict(d_model=32, vocab_size=50, max_seq_len=64,
             mamba=dict(n_heads=4, head_dim=8, d_state=8, n_groups=2, chunk_size=8),
             attention=dict(n_heads=4, n_kv_heads=2, head_dim=8),
             ffn=dict(hidden=64))


def small_model(pattern: str, **overrides):
    torch.manual_seed(0)
    return build_model(ModelConfig(pattern=pattern, **{**SMALL, **overrides})).double().eval()


@pytest.mark.parametrize("pattern", ["M-M*-", "*-*-", "MMMM", "M*M*"])
def test_prefill_then_decode_equals_full_forward(pattern):
    model = small_model(pattern)
    ids = torch.randint(0, 50, (2, 29))
    full = model(ids)
    cache = model.allocate_cache(2, 40)
    pieces = [model(ids[:, :10], cache), model(ids[:, 10:17], cache)]
    pieces += [model(ids[:, t:t + 1], cache) for t in range(17, 29)]
    torch.testing.assert_close(torch.cat(pieces, 1), full, rtol=1e-9, atol=1e-9)
    assert cache.length == 29


def test_inputs_embeds_stand_in_for_token_ids():
    """A prefix of vectors that are not token embeddings (image tiles, say) followed by text,
    against the same computation spelled out: embed the text by hand and run the blocks."""
    model = small_model("M-M*-")
    ids = torch.randint(0, 50, (2, 12))
    torch.testing.assert_close(model(inputs_embeds=model.embed(ids)), model(ids), rtol=0, atol=0)
    tiles = torch.randn(2, 5, 32, dtype=torch.float64)
    mixed = torch.cat([tiles, model.embed(ids)], 1)
    x = mixed
    for block in model.layers:
        x = block(x, None, None)
    torch.testing.assert_close(model(inputs_embeds=mixed), model.lm_head(model.norm_f(x)))
    cache = model.allocate_cache(2, 40)  # vectors prefilled, then text decoded through the cache
    pieces = [model(inputs_embeds=mixed[:, :9], cache=cache), model(ids[:, 4:], cache)]
    torch.testing.assert_close(torch.cat(pieces, 1), model(inputs_embeds=mixed), rtol=1e-9, atol=1e-9)


def test_exactly_one_input_kind():
    model = small_model("M*")
    ids = torch.randint(0, 50, (1, 4))
    with pytest.raises(ValueError, match="input_ids, inputs_embeds: give exactly one"):
        model(ids, inputs_embeds=model.embed(ids))
    with pytest.raises(ValueError, match="input_ids, inputs_embeds: give exactly one"):
        model()
    with pytest.raises(ValueError, match=r"inputs_embeds: expected shape \(batch, length, d_model=32\)"):
        model(inputs_embeds=torch.zeros(1, 4, 16, dtype=torch.float64))


def test_greedy_generation_equals_argmax_of_full_forwards():
    """Reference: no cache at all, re-run the whole sequence for every new token."""
    model = small_model("M-M*-", attention=dict(n_heads=4, n_kv_heads=2, head_dim=8, rope=True))
    prompt = torch.randint(0, 50, (3, 6))
    got = model.generate(prompt, max_new_tokens=12)
    ref = prompt
    for _ in range(12):
        ref = torch.cat([ref, model(ref)[:, -1].argmax(-1, keepdim=True)], 1)
    assert torch.equal(got, ref)


def test_sampling_is_seeded_and_top_k_restricts_choices():
    model = small_model("M-*-")
    prompt = torch.randint(0, 50, (4, 5))
    a = model.generate(prompt, 10, temperature=1.0, seed=7)
    b = model.generate(prompt, 10, temperature=1.0, seed=7)
    c = model.generate(prompt, 10, temperature=1.0, seed=8)
    assert torch.equal(a, b) and not torch.equal(a, c)
    # top_k=1 is greedy whatever the temperature.
    assert torch.equal(model.generate(prompt, 8, temperature=2.0, top_k=1, seed=3), model.generate(prompt, 8))


def test_tied_embeddings_share_weights():
    model = small_model("M-", tie_embeddings=True)
    assert model.lm_head.weight is model.embed.weight


def test_meta_build_allocates_nothing():
    cfg = ModelConfig(pattern="M*-", **SMALL)
    model = build_model(cfg, device="meta")
    assert all(p.is_meta for p in model.parameters())


@pytest.mark.parametrize("kwargs,field", [
    (dict(pattern="M-Q*"), "pattern"),
    (dict(pattern=""), "pattern"),
    (dict(pattern="M-", mamba=dict(n_heads=6, n_groups=4)), "mamba.n_groups"),
    (dict(pattern="*-", attention=dict(n_heads=6, n_kv_heads=4)), "attention.n_kv_heads"),
    (dict(pattern="*-", attention=dict(head_dim=7, rope=True)), "attention.head_dim"),
    (dict(pattern="-", ffn=dict(activation="gelu")), "ffn.activation"),
    (dict(pattern="M", d_model=0), "d_model"),
    (dict(pattern="M", mamba=dict(chunk_siz=3)), "chunk_siz"),
])
def test_bad_config_names_the_field(kwargs, field):
    with pytest.raises(ConfigError) as err:
        ModelConfig(**kwargs)
    assert field in str(err.value)


def test_unknown_pattern_character_lists_allowed():
    with pytest.raises(ConfigError, match=r"pattern: unknown layer character\(s\) \['Q'\].*'M' \(Mamba-2\)"):
        ModelConfig(pattern="MQ")


def test_unknown_top_level_key():
    with pytest.raises(ConfigError, match="n_layer: unknown config key"):
        ModelConfig.from_dict({"pattern": "M", "n_layer": 3})


def test_sequence_longer_than_configured():
    model = small_model("M*", max_seq_len=16)
    with pytest.raises(ValueError, match="max_seq_len: sequence of 17 tokens"):
        model(torch.zeros(1, 17, dtype=torch.long))
    cache = model.allocate_cache(1, 16)
    model(torch.zeros(1, 10, dtype=torch.long), cache)
    with pytest.raises(ValueError, match="max_seq_len"):
        model(torch.zeros(1, 7, dtype=torch.long), cache)


def test_config_round_trips_through_plain_dict():
    cfg = ModelConfig(pattern="M*-", **SMALL)
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg
