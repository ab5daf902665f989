"""HF interop: an exported HybridLM and its transformers NemotronH twin compute the same thing.

transformers' NemotronHForCausalLM (pure-PyTorch path on CPU) is the independent reference.
"""

import json
import pathlib

import pytest
import torch
import yaml
from safetensors.torch import load_file, save_file

from nvrepro.core.cli import main
from nvrepro.core.config import ConfigError, ModelConfig, model_config_from_yaml
from nvrepro.core.hf import export_hf, from_hf_config, import_hf, to_hf_config, to_hf_state_dict
from nvrepro.core.lm import build_model
from nvrepro.core.module import CausalLMModule

transformers = pytest.importorskip("transformers")
CONFIGS = pathlib.Path(__file__).resolve().parents[2] / "configs" / "hybrid"

# All three layer kinds, n_groups > 1 (B/C sharing and the grouped gated norm), GQA, and prompts
# longer than chunk_size (chunked SSD with a ragged tail). init_std 0.2 gives O(1) logits, so
# 1e-4 is a real tolerance. Δ is initialised in [1e-4, 1e-2], straddling transformers' default
# time_step_min (1e-3), so its prefill-only clamp would show if the export left it on.
TINY = dict(pattern="M*-M-*M", d_model=32, vocab_size=64, max_seq_len=64, init_std=0.2,
            mamba=dict(n_heads=4, head_dim=8, d_state=8, n_groups=2, chunk_size=4,
                       dt_min=1e-4, dt_max=1e-2),
            attention=dict(n_heads=4, n_kv_heads=2, head_dim=8), ffn=dict(hidden=48))


def tiny_model(seed: int = 0):
    torch.manual_seed(seed)
    model = build_model(ModelConfig.from_dict(TINY)).eval()
    with torch.no_grad():  # move weights off their ones/zeros init so a mis-mapped name shows
        for name, p in model.named_parameters():
            if name.endswith(("norm.weight", "norm_f.weight", ".D", "conv1d.bias")):
                p.add_(0.3 * torch.randn_like(p))
    return model


def load_hf(path):
    return transformers.NemotronHForCausalLM.from_pretrained(path).eval()


@pytest.fixture(scope="module")
def twin(tmp_path_factory):
    model = tiny_model()
    out = export_hf(model, tmp_path_factory.mktemp("hf"))
    return model, load_hf(out), out


@pytest.fixture(scope="module")
def prompt():
    return torch.randint(0, TINY["vocab_size"], (2, 11), generator=torch.Generator().manual_seed(1))


@torch.no_grad()
def test_logits_match_transformers(twin, prompt):
    model, hf, _ = twin
    torch.testing.assert_close(hf(prompt).logits, model(prompt), atol=1e-4, rtol=0)


@torch.no_grad()
def test_greedy_continuation_matches_transformers_cached_generate(twin, prompt):
    model, hf, _ = twin
    ours = model.generate(prompt, max_new_tokens=12)
    theirs = hf.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=12,
                         do_sample=False, use_cache=True)
    assert torch.equal(ours, theirs)


@torch.no_grad()
def test_attention_free_model_without_conv_bias_runs_in_transformers(prompt, tmp_path):
    """No attention layer: transformers' cache cannot hold it, so the export sets use_cache off."""
    torch.manual_seed(2)
    model = build_model(ModelConfig.from_dict(
        {**TINY, "pattern": "MM-", "mamba": {**TINY["mamba"], "conv_bias": False}})).eval()
    hf = load_hf(export_hf(model, tmp_path))
    torch.testing.assert_close(hf(prompt).logits, model(prompt), atol=1e-4, rtol=0)
    assert torch.equal(hf.generate(prompt, max_new_tokens=4, do_sample=False), model.generate(prompt, 4))


@torch.no_grad()
def test_transformers_default_time_step_min_would_change_the_logits(twin, prompt, tmp_path):
    """Why the export writes time_step_min = 0: transformers clamps Δ >= time_step_min in prefill."""
    model, _, out = twin
    for name in ("config.json", "model.safetensors"):
        (tmp_path / name).write_bytes((out / name).read_bytes())
    cfg = json.loads((tmp_path / "config.json").read_text())
    cfg["time_step_min"] = 1e-3
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    assert (load_hf(tmp_path)(prompt).logits - model(prompt)).abs().max() > 1e-3


def test_import_of_export_round_trips_exactly(twin):
    model, _, out = twin
    back = import_hf(out)
    assert back.cfg == model.cfg
    original = model.state_dict()
    restored = back.state_dict()
    assert restored.keys() == original.keys()
    for name, value in original.items():
        assert torch.equal(restored[name], value), name


def test_bfloat16_export_stores_rounded_weights(twin, tmp_path):
    model, _, _ = twin
    out = export_hf(model, tmp_path, dtype="bfloat16")
    assert json.loads((out / "config.json").read_text())["dtype"] == "bfloat16"
    assert {t.dtype for t in load_file(out / "model.safetensors").values()} == {torch.bfloat16}
    back = import_hf(out)
    for name, value in model.state_dict().items():
        assert torch.equal(back.state_dict()[name], value.to(torch.bfloat16).float()), name


@torch.no_grad()
def test_import_reads_transformers_own_and_nvidia_layouts(twin, prompt, tmp_path):
    """What save_pretrained writes (layers_block_type, Infinity as {"__float__": ...}) and NVIDIA's
    release layout (``backbone.`` prefix, legacy layer names) both import to the same model."""
    _, hf, _ = twin
    hf.save_pretrained(tmp_path / "saved")
    saved = json.loads((tmp_path / "saved" / "config.json").read_text())
    assert "layers_block_type" in saved  # the 5.x spelling, not our hybrid_override_pattern
    expected = hf(prompt).logits
    torch.testing.assert_close(import_hf(tmp_path / "saved")(prompt), expected, atol=1e-4, rtol=0)

    legacy = tmp_path / "legacy"
    legacy.mkdir()
    saved["layers_block_type"] = [{"linear_attention": "mamba", "full_attention": "attention"}.get(t, t)
                                  for t in saved["layers_block_type"]]
    (legacy / "config.json").write_text(json.dumps(saved))
    tensors = load_file(tmp_path / "saved" / "model.safetensors")
    save_file({k.replace("model.", "backbone.", 1): v for k, v in tensors.items()},
              legacy / "model.safetensors")
    torch.testing.assert_close(import_hf(legacy)(prompt), expected, atol=1e-4, rtol=0)


@pytest.mark.parametrize("change, field", [
    ({"attention": {**TINY["attention"], "rope": True}}, "attention.rope"),
    ({"ffn": {"hidden": 48, "activation": "swiglu"}}, "ffn.activation"),
    ({"tie_embeddings": True}, "tie_embeddings"),
    ({"mamba": {**TINY["mamba"], "dt_limit": (0.001, float("inf"))}}, "mamba.dt_limit"),
])
def test_unsupported_configs_name_the_field(change, field):
    with pytest.raises(ConfigError, match=field):
        to_hf_config(ModelConfig.from_dict({**TINY, **change}))


def test_a_field_the_export_does_not_know_must_keep_its_default(monkeypatch):
    """A field added to ModelConfig later is refused when set, not exported as if absent."""
    import nvrepro.core.hf as hf_module

    monkeypatch.setitem(hf_module.MAPPED_FIELDS, "mamba", hf_module.MAPPED_FIELDS["mamba"] - {"conv_bias"})
    to_hf_config(ModelConfig.from_dict(TINY))  # default value: fine
    with pytest.raises(ConfigError, match="mamba.conv_bias"):
        to_hf_config(ModelConfig.from_dict({**TINY, "mamba": {**TINY["mamba"], "conv_bias": False}}))


@pytest.mark.parametrize("change, field", [
    ({"hybrid_override_pattern": "ME*-"}, "hybrid_override_pattern"),
    ({"mlp_bias": True}, "mlp_bias"),
    ({"mlp_hidden_act": "silu"}, "mlp_hidden_act"),
])
def test_unsupported_hf_configs_name_the_field(change, field):
    hf = {**to_hf_config(ModelConfig.from_dict(TINY)), **change}
    with pytest.raises(ConfigError, match=field):
        from_hf_config(hf)


def test_import_warns_about_transformers_prefill_clamp():
    hf = {**to_hf_config(ModelConfig.from_dict(TINY)), "time_step_min": 1e-3}
    del hf["nvrepro_mamba_dt_min"]
    with pytest.warns(UserWarning, match="time_step_min"):
        cfg = from_hf_config(hf)
    assert cfg.mamba.dt_min == 1e-3 and cfg.mamba.dt_limit == (0.0, float("inf"))


@torch.no_grad()
def test_cli_export_import_export(tmp_path, capsys, prompt):
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump({"seed_everything": 3, "model": {"init_args": {"model": TINY}}}))
    assert main(["export-hf", "--config", str(config), "--out", str(tmp_path / "a")]) == 0
    assert "freshly initialised" in capsys.readouterr().out
    hf = load_hf(tmp_path / "a")
    torch.manual_seed(3)  # the YAML's seed
    torch.testing.assert_close(hf(prompt).logits, build_model(ModelConfig.from_dict(TINY))(prompt),
                               atol=1e-4, rtol=0)

    ckpt = tmp_path / "imported.ckpt"
    assert main(["import-hf", "--hf", str(tmp_path / "a"), "--out", str(ckpt)]) == 0
    module = CausalLMModule.load_from_checkpoint(ckpt, weights_only=True)
    torch.testing.assert_close(module(prompt), hf(prompt).logits, atol=1e-4, rtol=0)

    assert main(["export-hf", "--ckpt", str(ckpt), "--out", str(tmp_path / "b"), "--dtype", "bfloat16"]) == 0
    a, b = load_file(tmp_path / "a" / "model.safetensors"), load_file(tmp_path / "b" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k].to(torch.bfloat16), b[k]) for k in a)

    other = tmp_path / "other.yaml"
    other.write_text(yaml.safe_dump({"model": {**TINY, "d_model": 48}}))
    capsys.readouterr()
    assert main(["export-hf", "--config", str(other), "--ckpt", str(ckpt), "--out", str(tmp_path / "c")]) == 2
    assert "d_model" in capsys.readouterr().err


NEMOTRON_H = ("nemotron_h_8b", "nemotron_h_47b", "nemotron_h_56b")


@pytest.mark.parametrize("name", NEMOTRON_H)
def test_full_scale_configs_build_the_same_tensors_in_transformers(name):
    """The real configs map onto transformers' own module tree: same names, same shapes (meta)."""
    cfg = model_config_from_yaml(CONFIGS / f"{name}.yaml")
    with torch.device("meta"):
        hf = transformers.NemotronHForCausalLM(transformers.NemotronHConfig(**to_hf_config(cfg)))
    theirs = {k: tuple(v.shape) for k, v in hf.state_dict().items()}
    ours = {k: tuple(v.shape) for k, v in to_hf_state_dict(build_model(cfg, device="meta")).items()}
    assert theirs == ours


def test_llama_configs_are_refused_by_name():
    with pytest.raises(ConfigError, match="attention.rope"):
        to_hf_config(model_config_from_yaml(CONFIGS / "llama_3_1_8b.yaml"))
