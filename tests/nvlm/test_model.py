"""NVLM-D / -X / -H: the gates-at-zero identity with the text model, the tile-tag mask seen through the
whole model, the routing of images, and the masked cross-attention against a per-query loop."""

import pytest
import torch

from nvrepro.core.lm.config import AttentionConfig
from nvrepro.core.lm.layers.cross_attention import CrossAttention, MaskedContext
from nvrepro.core.lm.model import PatternLM
from nvrepro.core.tooling.validation import ConfigError
from nvrepro.nvlm.data import DocumentQA, collate
from nvrepro.nvlm.model import NVLM, NVLMConfig, load_text_model, text_config

VISION = dict(image_size=32, patch_size=8, d_model=16, n_layers=1, n_heads=2)


def small_config(architecture: str, **kw) -> NVLMConfig:
    pattern = "*-*-" if architecture == "D" else "X*-X*-"
    return NVLMConfig(architecture=architecture, pattern=pattern, d_model=32, vocab_size=261, max_seq_len=256,
                      attention=dict(n_heads=2, n_kv_heads=2, head_dim=16), ffn=dict(hidden=64),
                      vision=VISION, **kw)


def batch_for(architecture: str, n: int = 3, tile_tag: str = "1d", seed: int = 0) -> dict:
    ds = DocumentQA(n, "val", seed=seed, architecture=architecture, tile_tag=tile_tag, tile_size=32,
                    tokens_per_tile=4)
    return collate([ds[i] for i in range(n)])


def inputs(batch: dict) -> dict:
    return {k: v for k, v in batch.items() if k not in ("labels", "is_text")}


def test_tokens_per_tile_follow_the_vit_grid_and_shuffle():
    cfg = small_config("D")
    assert cfg.tokens_per_tile == (32 // 8 // 2) ** 2 == 4
    model = NVLM(cfg)
    assert model.encode_images(torch.randn(5, 3, 32, 32)).shape == (5, 4, 32)


@pytest.mark.parametrize("architecture", ["X", "H"])
def test_gates_at_zero_give_the_text_models_logits_exactly(architecture):
    torch.manual_seed(0)
    cfg = small_config(architecture)
    text_lm = PatternLM(text_config(cfg)).eval()
    model = load_text_model(NVLM(cfg), text_lm).eval()
    batch = batch_for(architecture)
    with torch.no_grad():
        got = model(**inputs(batch))
        ids = batch["input_ids"]
        placeholders = ids == cfg.image_token_id
        embeds = text_lm.embed(ids.masked_fill(placeholders, 0))
        if architecture == "H":  # the thumbnail's tokens (last image of each sample) are in the decoder
            assert placeholders.any()
            thumbs = [batch["pixel_values"][i, int(batch["image_mask"][i].sum()) - 1] for i in range(len(ids))]
            features = model.encode_images(torch.stack(thumbs))  # (b, T, d)
            embeds[placeholders] = features.reshape(-1, cfg.d_model)
        else:
            assert not placeholders.any()
        want = text_lm(inputs_embeds=embeds)
    assert torch.equal(got, want)


def test_without_images_x_is_the_text_model():
    torch.manual_seed(0)
    cfg = small_config("X")
    text_lm = PatternLM(text_config(cfg)).eval()
    model = load_text_model(NVLM(cfg), text_lm).eval()
    for block in model.layers:
        if block.kind == "X":
            block.mixer.gate.data.fill_(1.0)  # even open gates add nothing: there is nothing to attend to
    ids = torch.randint(0, 256, (2, 9))
    with torch.no_grad():
        assert torch.equal(model(ids), text_lm(ids))


def _open_gates(model: NVLM) -> None:
    for block in model.layers:
        if block.kind == "X":
            block.mixer.gate.data.fill_(1.0)


@pytest.mark.parametrize("architecture", ["X", "H"])
def test_a_tile_tag_sees_only_its_own_tile(architecture):
    torch.manual_seed(0)
    model = NVLM(small_config(architecture)).eval()
    _open_gates(model)
    batch = next(b for seed in range(40) if int((b := batch_for(architecture, n=1, seed=seed))["image_mask"].sum()) >= 3)
    outputs = []
    hook = model.layers[0].mixer.register_forward_hook(lambda module, args, out: outputs.append(out))
    with torch.no_grad():
        for changed_tile in (None, 0, 1):
            pixels = batch["pixel_values"].clone()
            if changed_tile is not None:
                pixels[0, changed_tile] = torch.randn_like(pixels[0, changed_tile])
            model(**dict(inputs(batch), pixel_values=pixels))
    hook.remove()
    base, tile0_changed, tile1_changed = (o[0] for o in outputs)  # first cross-attention layer's output
    owner = batch["token_tile"][0]
    tag0, tag1, text = owner == 0, owner == 1, (owner == -1) & (batch["input_ids"][0] != 260)
    assert torch.equal(base[tag0], tile1_changed[tag0])  # tile 1's tag cannot see tile 2
    assert torch.equal(base[tag1], tile0_changed[tag1])  # nor tile 2's tag tile 1
    assert not torch.allclose(base[tag0], tile0_changed[tag0])  # each sees its own tile
    assert not torch.allclose(base[tag1], tile1_changed[tag1])
    assert not torch.allclose(base[text], tile1_changed[text])  # ordinary text sees every tile


def test_nvlm_d_reads_the_tiles_in_the_decoder():
    torch.manual_seed(0)
    model = NVLM(small_config("D")).eval()
    batch = batch_for("D", n=2)
    with torch.no_grad():
        base = model(**inputs(batch))
        other = dict(batch, pixel_values=batch["pixel_values"].clone())
        other["pixel_values"][0, 0] += 1.0
        changed = model(**inputs(other))
    first = (batch["input_ids"][0] == 260).nonzero().flatten()[0]
    assert torch.equal(base[0, :first], changed[0, :first])  # causal: nothing before the first tile moves
    assert not torch.allclose(base[0, first:], changed[0, first:])
    assert torch.equal(base[1], changed[1])  # the other sample is untouched


def test_routing_errors_name_the_problem():
    batch = batch_for("D", n=2)
    model = NVLM(small_config("D"))
    ids = batch["input_ids"].clone()
    ids[ids == 260] = 65  # no placeholders left for the images
    bad = dict(inputs(batch), input_ids=ids)
    with pytest.raises(ValueError, match="placeholders"):
        model(**bad)
    with pytest.raises(ValueError, match="NVLM-D has no cross-attention"):
        model(**dict(inputs(batch), image_in_decoder=torch.zeros_like(batch["image_in_decoder"])))
    x = NVLM(small_config("X"))
    with pytest.raises(ValueError, match="NVLM-X puts no image in the decoder"):
        x(**dict(inputs(batch_for("X", n=2)), image_in_decoder=batch["image_mask"]))
    with pytest.raises(ValueError, match="no images were given"):
        model(batch["input_ids"])


def test_config_errors_name_the_field():
    with pytest.raises(ConfigError, match="pattern"):
        NVLMConfig(architecture="D", pattern="X*-", vision=VISION)
    with pytest.raises(ConfigError, match="pattern"):
        NVLMConfig(architecture="H", pattern="*-", vision=VISION)
    with pytest.raises(ConfigError, match="architecture"):
        NVLMConfig(architecture="Q", pattern="*-", vision=VISION)
    with pytest.raises(ConfigError, match="shuffle"):
        NVLMConfig(pattern="*-", vision=dict(VISION, image_size=24), shuffle=2)
    with pytest.raises(ConfigError, match="image_token_id"):
        NVLMConfig(pattern="*-", vision=VISION, image_token_id=999, vocab_size=261)
    with pytest.raises(ConfigError, match="vision.depth"):
        NVLMConfig(pattern="*-", vision=dict(VISION, depth=3))


def naive_masked_attention(layer: CrossAttention, x, states, allowed):
    """Per sample and query: softmax over the allowed keys only (0 if none), per head, then o_proj."""
    cfg = layer.cfg
    b, l, _ = x.shape
    out = torch.zeros(b, l, cfg.n_heads * cfg.head_dim)
    q = layer.q_proj(x).view(b, l, cfg.n_heads, cfg.head_dim)
    k = layer.k_proj(states).view(b, -1, cfg.n_kv_heads, cfg.head_dim)
    v = layer.v_proj(states).view(b, -1, cfg.n_kv_heads, cfg.head_dim)
    group = cfg.n_heads // cfg.n_kv_heads
    for i in range(b):
        for t in range(l):
            keys = allowed[i, t].nonzero().flatten()
            if len(keys) == 0:
                continue
            for h in range(cfg.n_heads):
                scores = k[i, keys, h // group] @ q[i, t, h] / cfg.head_dim ** 0.5
                out[i, t, h * cfg.head_dim:(h + 1) * cfg.head_dim] = torch.softmax(scores, 0) @ v[i, keys, h // group]
    return layer.o_proj(out)


def test_masked_cross_attention_matches_a_per_query_loop():
    torch.manual_seed(0)
    layer = CrossAttention(24, AttentionConfig(n_heads=4, n_kv_heads=2, head_dim=6))
    x, states = torch.randn(2, 5, 24), torch.randn(2, 7, 24)
    allowed = torch.rand(2, 5, 7) < 0.5
    allowed[0, 2] = False  # a query that sees nothing
    with torch.no_grad():
        got = layer(x, MaskedContext(states, allowed))
        want = naive_masked_attention(layer, x, states, allowed)
    assert torch.allclose(got, want, atol=1e-5)
    assert torch.equal(got[0, 2], torch.zeros(24))  # no bias in o_proj: a blind query adds exactly 0
    empty = MaskedContext(torch.zeros(2, 0, 24), torch.zeros(2, 5, 0, dtype=torch.bool))
    with torch.no_grad():
        assert torch.isfinite(layer(x, empty)).all()
    with pytest.raises(ValueError, match="context.allowed"):
        layer(x, MaskedContext(states, allowed[:, :3]))
