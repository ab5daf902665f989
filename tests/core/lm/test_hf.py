"""HF interop: an exported PatternLM and its transformers NemotronH twin compute the same thing.

transformers' NemotronHForCausalLM (pure-PyTorch path on CPU) is the independent reference;
tests that need it skip, saying so, where the installed transformers has no NemotronH.
"""

import json
import warnings

import pytest
import torch
import yaml
from safetensors.torch import load_file, save_file

import nvrepro.core.lm.hf as hf_module
from nvrepro.cli import main
from nvrepro.core.lm.config import ConfigError, ModelConfig, model_config_from_yaml
from nvrepro.core.lm.hf import (TimeStepRule, export_hf, from_hf_config, import_hf, to_hf_config,
                             to_hf_state_dict, transformers_time_step_rule)
from nvrepro.core.lm.model import build_model
from nvrepro.core.training.module import CausalLMModule
from nvrepro.core.tooling.paths import CONFIGS_DIR

try:
    import transformers
except ImportError:
    transformers = None
needs_nemotron_h = pytest.mark.skipif(
    not hasattr(transformers, "NemotronHForCausalLM"),
    reason=f"the installed transformers ({getattr(transformers, '__version__', 'none')}) has no "
           "NemotronHForCausalLM to compare against")
CONFIGS = CONFIGS_DIR / "hybrid"

# All three layer kinds, n_groups > 1 (B/C sharing and the grouped gated norm), GQA, and prompts
# longer than chunk_size (chunked SSD with a ragged tail). init_std 0.2 gives O(1) logits, so
# 1e-4 is a real tolerance. Δ is initialised in [1e-4, 1e-2], straddling transformers' default
# time_step_min (1e-3), so a clamp at it would show (see the canary below).
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
def exported(tmp_path_factory):
    """The tiny model and its export directory (no transformers needed)."""
    model = tiny_model()
    return model, export_hf(model, tmp_path_factory.mktemp("hf"))


@pytest.fixture(scope="module")
def twin(exported):
    model, out = exported
    return model, load_hf(out), out


@pytest.fixture(scope="module")
def prompt():
    return torch.randint(0, TINY["vocab_size"], (2, 11), generator=torch.Generator().manual_seed(1))


@needs_nemotron_h
@torch.no_grad()
def test_logits_match_transformers(twin, prompt):
    model, hf, _ = twin
    torch.testing.assert_close(hf(prompt).logits, model(prompt), atol=1e-4, rtol=0)


@needs_nemotron_h
@torch.no_grad()
def test_greedy_continuation_matches_transformers_cached_generate(twin, prompt):
    model, hf, _ = twin
    ours = model.generate(prompt, max_new_tokens=12)
    theirs = hf.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=12,
                         do_sample=False, use_cache=True)
    assert torch.equal(ours, theirs)


@needs_nemotron_h
@torch.no_grad()
def test_attention_free_model_without_conv_bias_runs_in_transformers(prompt, tmp_path):
    """No attention layer: transformers' cache cannot hold it, so the export sets use_cache off."""
    torch.manual_seed(2)
    model = build_model(ModelConfig.from_dict(
        {**TINY, "pattern": "MM-", "mamba": {**TINY["mamba"], "conv_bias": False}})).eval()
    hf = load_hf(export_hf(model, tmp_path))
    torch.testing.assert_close(hf(prompt).logits, model(prompt), atol=1e-4, rtol=0)
    assert torch.equal(hf.generate(prompt, max_new_tokens=4, do_sample=False), model.generate(prompt, 4))


@needs_nemotron_h
@torch.no_grad()
def test_canary_does_transformers_clamp_delta_at_time_step_min(twin, prompt, tmp_path):
    """Canary: does the installed transformers clamp Δ >= time_step_min in prefill? (Seen: 5.24
    does; 5.25 does not, it reads time_step_limit.) The warning it emits says which, every run.

    Measured by reloading the export with transformers' default time_step_min = 1e-3 in place of
    the exported 0: Δ is initialised in [1e-4, 1e-2], so a clamp at 1e-3 moves the logits by
    more than 1e-3. Either way nvrepro must match transformers on its own export (time_step_min
    = 0), its run-time probe must agree with this measurement, and importing the 1e-3 file must
    warn exactly when transformers clamps (nvrepro never does: the import equals the original).
    """
    model, hf, out = twin
    exported = json.loads((out / "config.json").read_text())
    assert (exported["time_step_min"], exported["time_step_limit"]) == (0.0, [0.0, float("inf")])
    (tmp_path / "model.safetensors").write_bytes((out / "model.safetensors").read_bytes())
    (tmp_path / "config.json").write_text(json.dumps({**exported, "time_step_min": 1e-3}))
    ours = model(prompt)
    clamps = bool((load_hf(tmp_path)(prompt).logits - ours).abs().max() > 1e-3)
    verdict = (f"canary: transformers {transformers.__version__} "
               f"{'clamps' if clamps else 'does not clamp'} Δ >= time_step_min in prefill; nvrepro "
               "exports time_step_min = 0 so both agree, and warns on importing time_step_min > 0 "
               f"{'(it does here)' if clamps else 'only where a transformers clamps (not here)'}")
    warnings.warn(verdict)

    torch.testing.assert_close(hf(prompt).logits, ours, atol=1e-4, rtol=0, msg=lambda m: f"{verdict}\n{m}")
    rule = transformers_time_step_rule()
    assert rule.clamps_at_time_step_min == clamps, f"{verdict}; but the probe says: {rule.describe()}"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        imported = import_hf(tmp_path)
    warned = any("time_step_min=0.001" in str(w.message) for w in caught)
    assert warned == clamps, f"{verdict}; import warned: {warned}"
    torch.testing.assert_close(imported(prompt), ours, atol=1e-5, rtol=0)


def test_import_of_export_round_trips_exactly(exported):
    model, out = exported
    back = import_hf(out)
    assert back.cfg == model.cfg
    original = model.state_dict()
    restored = back.state_dict()
    assert restored.keys() == original.keys()
    for name, value in original.items():
        assert torch.equal(restored[name], value), name


def test_bfloat16_export_stores_rounded_weights(exported, tmp_path):
    model, _ = exported
    out = export_hf(model, tmp_path, dtype="bfloat16")
    assert json.loads((out / "config.json").read_text())["dtype"] == "bfloat16"
    assert {t.dtype for t in load_file(out / "model.safetensors").values()} == {torch.bfloat16}
    back = import_hf(out)
    for name, value in model.state_dict().items():
        assert torch.equal(back.state_dict()[name], value.to(torch.bfloat16).float()), name


@needs_nemotron_h
@torch.no_grad()
def test_import_reads_what_transformers_save_pretrained_writes(twin, prompt, tmp_path):
    """Whatever layout the installed transformers saves (5.x: layers_block_type, Infinity as
    {"__float__": ...}) imports to a model with transformers' logits."""
    _, hf, _ = twin
    hf.save_pretrained(tmp_path)
    torch.testing.assert_close(import_hf(tmp_path)(prompt), hf(prompt).logits, atol=1e-4, rtol=0)


LAYER_NAMES = {  # the pattern as a layers_block_type list, in transformers 5.x's and legacy names
    "5.x": {"M": "linear_attention", "*": "full_attention", "-": "mlp"},
    "legacy": {"M": "mamba", "*": "attention", "-": "mlp"},
}


@pytest.mark.parametrize("names, prefix", [("5.x", "model."), ("legacy", "backbone.")])
def test_import_reads_layer_lists_and_nvidia_prefix(exported, tmp_path, names, prefix):
    """layers_block_type lists instead of the pattern string, ``{"__float__": "Infinity"}``, and
    NVIDIA's ``backbone.`` prefix, written here by hand, import to the original weights."""
    model, out = exported
    cfg = json.loads((out / "config.json").read_text())
    del cfg["hybrid_override_pattern"]
    cfg["layers_block_type"] = [LAYER_NAMES[names][c] for c in TINY["pattern"]]
    cfg["time_step_limit"] = [0.0, {"__float__": "Infinity"}]
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    tensors = load_file(out / "model.safetensors")
    save_file({k.replace("model.", prefix, 1): v for k, v in tensors.items()}, tmp_path / "model.safetensors")
    back = import_hf(tmp_path)
    assert back.cfg == model.cfg
    for name, value in model.state_dict().items():
        assert torch.equal(back.state_dict()[name], value), name


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
    import nvrepro.core.lm.hf as hf_module

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


@pytest.mark.parametrize("rule, warns", [
    (TimeStepRule("x", clamps_at_time_step_min=True, applies_time_step_limit=False), True),
    (TimeStepRule("y", clamps_at_time_step_min=False, applies_time_step_limit=True), False),
    (None, True),  # no NemotronH installed to measure: versions that clamp exist
])
def test_import_warns_about_time_step_min_where_transformers_clamps_at_it(monkeypatch, rule, warns):
    monkeypatch.setattr(hf_module, "transformers_time_step_rule", lambda: rule)
    hf = {**to_hf_config(ModelConfig.from_dict(TINY)), "time_step_min": 1e-3}
    del hf["nvrepro_mamba_dt_min"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cfg = from_hf_config(hf)
    assert [str(w.message).startswith("time_step_min=0.001") for w in caught] == ([True] if warns else [])
    assert cfg.mamba.dt_min == 1e-3 and cfg.mamba.dt_limit == (0.0, float("inf"))


@needs_nemotron_h
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


@needs_nemotron_h
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
