"""FP8 recipe: rounding, gradients through E5M2, delayed scaling, layer exclusion, backends.

References are computed here independently: scales from the formula with Python floats,
rounding with torch's own float8 casts, layer counts from the pattern string.
"""

import contextlib
import sys
import types
import warnings

import lightning as L
import pytest
import torch
from torch import nn

from nvrepro.core.lm.config import ConfigError, model_config_from_yaml
from nvrepro.core.lm.model import build_model
from nvrepro.core.training.module import CausalLMModule
from nvrepro.core.training.precision import (E4M3, E5M2, FP8Config, FP8Linear, FP8Training, apply_fp8, as_fp8_config,
                                    attach_to_trainer, fp8_linear_names, quantize_dequantize,
                                    record_fp8_stats, tensor_stats)
from nvrepro.core.training.precision.emulated import INPUT, fp8_to_float32
from nvrepro.core.training.precision.apply import import_torchao_float8
from nvrepro.core.tooling.runner import REPO_ROOT as ROOT

MAX = {E4M3: 448.0, E5M2: 57344.0}
LINEARS_PER_LAYER = {"M": 2, "*": 4, "-": 2}  # in/out proj; q, k, v, o; up, down (relu2)
TINY = dict(pattern="M-*-M-", d_model=32, vocab_size=64, max_seq_len=64,
            mamba=dict(n_heads=4, head_dim=8, d_state=8, chunk_size=16),
            attention=dict(n_heads=2, n_kv_heads=1, head_dim=16), ffn=dict(hidden=64))


def wide_range(*shape, seed=0):
    """Values spread over ~12 orders of magnitude, signs mixed: rounding and underflow both bite."""
    gen = torch.Generator().manual_seed(seed)
    mag = torch.exp(torch.empty(*shape).uniform_(-28, 0, generator=gen))
    return mag * torch.randn(*shape, generator=gen).sign()


def reference_qdq(t, dtype, amax=None):
    """Per-tensor current scaling by hand: s = fmax / amax (Python float), torch's float8 cast."""
    a = float(t.abs().max()) if amax is None else amax
    s = torch.tensor(MAX[dtype] / a, dtype=torch.float32)
    return (t * s).clamp(-MAX[dtype], MAX[dtype]).to(dtype).float() / s


def close(got, want):
    """Equal up to float32 accumulation order: tolerance relative to the tensor's scale."""
    torch.testing.assert_close(got, want.float(), rtol=1e-5, atol=1e-5 * want.abs().max().item())


@pytest.mark.parametrize("dtype", [E4M3, E5M2], ids=["e4m3", "e5m2"])
def test_rounding_equals_torch_float8_cast(dtype):
    x = wide_range(64, 48)
    got = quantize_dequantize(x, dtype)
    torch.testing.assert_close(got, reference_qdq(x, dtype), rtol=0, atol=0)
    assert got.abs().max() == x.abs().max()  # the amax maps onto the format's max exactly
    assert (got != x).float().mean() > 0.5  # FP8 really rounded (3 or 2 mantissa bits)
    assert torch.equal(quantize_dequantize(torch.zeros(5), dtype), torch.zeros(5))  # amax = 0: no NaN


@pytest.mark.parametrize("dtype", [E4M3, E5M2], ids=["e4m3", "e5m2"])
def test_fast_decode_matches_torch_cast_on_every_code(dtype):
    codes = torch.arange(256, dtype=torch.int32).to(torch.uint8).view(dtype)
    torch.testing.assert_close(fp8_to_float32(codes), codes.float(), rtol=0, atol=0, equal_nan=True)


def test_forward_and_gradients_go_through_e4m3_and_e5m2():
    """y = Q4(x) Q4(W)ᵀ; dL/dW = Q5(g)ᵀ Q4(x); dL/dx = Q5(g) Q4(W), with g = dL/dy."""
    x = wide_range(3, 5, 32, seed=1).requires_grad_(True)
    lin = FP8Linear.from_linear(nn.Linear(32, 16, bias=False))
    g = wide_range(3, 5, 16, seed=2)  # the gradient arriving at y: loss = sum(y * g)
    y = lin(x)
    (y * g).sum().backward()

    xq, wq, gq = reference_qdq(x.detach(), E4M3), reference_qdq(lin.weight.detach(), E4M3), reference_qdq(g, E5M2)

    close(y, xq.double() @ wq.double().T)
    close(lin.weight.grad, gq.reshape(-1, 16).double().T @ xq.reshape(-1, 32).double())
    close(x.grad, gq.double() @ wq.double())
    # ...and not the unquantised gradient, nor one rounded through E4M3
    exact_gw = g.reshape(-1, 16).T @ x.detach().reshape(-1, 32)
    e4m3_gw = reference_qdq(g, E4M3).reshape(-1, 16).T @ xq.reshape(-1, 32)
    assert not torch.allclose(lin.weight.grad, exact_gw, rtol=1e-3)
    assert not torch.allclose(lin.weight.grad, e4m3_gw, rtol=1e-3)


def test_delayed_scaling_uses_the_history_max():
    lin = FP8Linear.from_linear(nn.Linear(8, 4, bias=False), recipe="delayed", amax_history_len=4)
    lin.amax_history[INPUT] = torch.tensor([2.0, 8.0, 4.0, 0.0])
    x = wide_range(6, 8, seed=3)
    x = x / x.abs().max() * 3.0  # amax 3 < history max 8: scale = 448 / 8, not 448 / 3
    y = lin(x)
    close(y, reference_qdq(x, E4M3, amax=8.0) @ reference_qdq(lin.weight.detach(), E4M3).T)
    torch.testing.assert_close(lin.amax_history[INPUT], torch.tensor([3.0, 2.0, 8.0, 4.0]))

    x_big = x * 10  # amax 30 > history max 8: saturates at 8 instead of following the tensor
    lin.amax_history[INPUT] = torch.tensor([2.0, 8.0, 4.0, 0.0])
    lin.eval()  # evaluation reads the history without pushing into it
    y_big = lin(x_big)
    clipped = reference_qdq(x_big.clamp(-8, 8), E4M3, amax=8.0)
    close(y_big, clipped @ reference_qdq(lin.weight.detach(), E4M3).T)
    torch.testing.assert_close(lin.amax_history[INPUT], torch.tensor([2.0, 8.0, 4.0, 0.0]))


@pytest.mark.parametrize("n", [4, 2, 0])
def test_exclusion_picks_the_first_and_last_layers_of_the_8b_pattern(n):
    cfg = model_config_from_yaml(ROOT / "configs" / "hybrid" / "nemotron_h_8b.yaml")
    model = build_model(cfg, device="meta")
    names = apply_fp8(model, FP8Config(exclude_first_n=n, exclude_last_n=n))
    pattern = cfg.pattern
    middle = pattern[n:len(pattern) - n]
    assert len(names) == sum(LINEARS_PER_LAYER[c] for c in middle)
    assert {int(name.split(".")[1]) for name in names} == set(range(n, len(pattern) - n))
    for i, block in enumerate(model.layers):  # converted exactly there, nothing allocated
        kinds = {type(m) for m in block.modules() if isinstance(m, nn.Linear)}
        assert kinds == ({FP8Linear} if n <= i < len(pattern) - n else {nn.Linear})
    assert type(model.lm_head) is nn.Linear
    assert all(p.is_meta for p in model.parameters())
    if n == 4:  # the paper's 8B: layers 0-3 and 48-51 ("M-M-" at both ends) stay in BF16
        assert len(pattern) == 52 and pattern[:4] == pattern[-4:] == "M-M-" and len(names) == 96


def test_lm_head_only_when_asked_and_twice_converts_nothing_new():
    model = build_model(TINY)
    cfg = FP8Config(exclude_first_n=1, exclude_last_n=1, include_lm_head=True)
    names = apply_fp8(model, cfg)
    assert names[-1] == "lm_head" and isinstance(model.lm_head, FP8Linear)
    weight = model.layers[1].mixer.up_proj.weight
    assert apply_fp8(model, cfg) == names and model.layers[1].mixer.up_proj.weight is weight
    assert fp8_linear_names(model, FP8Config(backend="none")) == []


def test_emulation_and_torchao_agree_on_a_linear_layer():
    pytest.importorskip("torchao")
    float8 = import_torchao_float8()
    torch.manual_seed(0)
    ref = nn.Sequential(nn.Linear(64, 32, bias=False))
    emu, tao = FP8Linear.from_linear(nn.Linear(64, 32, bias=False)), None
    emu.weight.data.copy_(ref[0].weight)
    try:
        tao = float8.convert_to_float8_training(ref)[0]
        x = wide_range(16, 64, seed=4).requires_grad_(True)
        x_tao = x.detach().clone().requires_grad_(True)
        y_tao = tao(x_tao)
    except RuntimeError as err:  # e.g. no CPU kernel for torch._scaled_mm in this torch
        pytest.skip(f"torchao float8 training does not run on this machine's CPU: {err}")
    y_emu = emu(x)
    g = wide_range(16, 32, seed=5)
    (y_emu * g).sum().backward()
    (y_tao * g).sum().backward()
    exact = x.detach() @ emu.weight.detach().T
    fp8_err = ((y_emu - exact).norm() / exact.norm()).item()
    assert 1e-3 < fp8_err < 0.1  # E4M3's 3 mantissa bits: a visible, bounded error
    # Same quantisation on both sides: far closer to each other than either is to float32.
    for a, b in ((y_emu, y_tao), (x.grad, x_tao.grad), (emu.weight.grad, tao.weight.grad)):
        assert ((a - b).norm() / b.norm()).item() < fp8_err / 100


def test_torchao_backend_converts_the_same_linears():
    pytest.importorskip("torchao")
    Float8Linear = import_torchao_float8().float8_linear.Float8Linear

    model = build_model({**TINY, "d_model": 64})
    names = apply_fp8(model, FP8Config(backend="torchao", exclude_first_n=2, exclude_last_n=1))
    assert names == fp8_linear_names(model, FP8Config(exclude_first_n=2, exclude_last_n=1))
    assert {n for n, m in model.named_modules() if isinstance(m, Float8Linear)} == set(names)


@pytest.mark.parametrize("kwargs,field", [
    (dict(backend="fp9"), "fp8.backend"),
    (dict(recipe="just_in_time"), "fp8.recipe"),
    (dict(exclude_first_n=-1), "fp8.exclude_first_n"),
    (dict(exclude_last_n=1.5), "fp8.exclude_last_n"),
    (dict(amax_history_len=0), "fp8.amax_history_len"),
    (dict(backend="torchao", recipe="delayed"), "fp8.recipe"),
    (dict(exclude_first=2), "fp8.exclude_first: unknown config key"),
])
def test_config_errors_name_the_field(kwargs, field):
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        as_fp8_config(kwargs)


def test_transformer_engine_is_a_clear_error_without_it():
    if "transformer_engine" in sys.modules or torch.cuda.is_available():
        pytest.skip("Transformer Engine / CUDA present: the error path does not apply")
    with pytest.raises(ModuleNotFoundError, match="Transformer Engine"):
        apply_fp8(build_model(TINY), FP8Config(backend="transformer_engine", exclude_first_n=1,
                                               exclude_last_n=1))
    callback = FP8Training(dict(backend="transformer_engine"))
    with pytest.raises(ConfigError, match="configs/scale/fp8.yaml"):
        callback.setup(L.Trainer(accelerator="cpu", logger=False), CausalLMModule(model=TINY), "fit")


@pytest.fixture
def stand_in_te(monkeypatch, tmp_path):
    """A stand-in for Transformer Engine (not installable here): ``te.Linear``, the two recipes,
    and an ``fp8_autocast`` that records the recipe it is given. Importable, and visible to
    install checks through a ``dist-info`` on ``sys.path``."""

    class Linear(nn.Linear):
        __module__ = "transformer_engine.pytorch"  # where TE's layers come from

        def __init__(self, i, o, bias=True, params_dtype=None, device=None):
            super().__init__(i, o, bias=bias, dtype=params_dtype)

    class Recipe:
        def __init__(self, **kwargs):
            self.kwargs = kwargs

    autocasts = []

    @contextlib.contextmanager
    def fp8_autocast(enabled, fp8_recipe):
        autocasts.append(fp8_recipe)
        yield

    te_pkg, te_torch = types.ModuleType("transformer_engine"), types.ModuleType("transformer_engine.pytorch")
    te_common, te_recipe = (types.ModuleType("transformer_engine.common"),
                            types.ModuleType("transformer_engine.common.recipe"))
    te_torch.Linear, te_torch.fp8_autocast = Linear, fp8_autocast
    te_recipe.Float8CurrentScaling = type("Float8CurrentScaling", (Recipe,), {})
    te_recipe.DelayedScaling = type("DelayedScaling", (Recipe,), {})
    te_recipe.Format = types.SimpleNamespace(HYBRID="HYBRID")
    te_pkg.pytorch, te_pkg.common, te_common.recipe = te_torch, te_common, te_recipe
    for name, mod in {"transformer_engine": te_pkg, "transformer_engine.pytorch": te_torch,
                      "transformer_engine.common": te_common,
                      "transformer_engine.common.recipe": te_recipe}.items():
        monkeypatch.setitem(sys.modules, name, mod)
    dist = tmp_path / "transformer_engine-2.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: transformer_engine\nVersion: 2.0\n")
    monkeypatch.syspath_prepend(tmp_path)
    return types.SimpleNamespace(Linear=Linear, autocasts=autocasts)


def te_plugin():
    """Lightning's TE precision plugin, built by its public constructor."""
    from lightning.pytorch.plugins.precision import TransformerEnginePrecision

    try:
        return TransformerEnginePrecision(weights_dtype=torch.float32)
    except ModuleNotFoundError as err:  # its install check ran earlier in this process, unmet
        pytest.skip(f"Lightning's TransformerEnginePrecision does not see the stand-in TE: {err}")


ELIGIBLE = [f"layers.{i}.mixer.{s}" for i, s in ((2, "q_proj"), (2, "k_proj"), (2, "v_proj"), (2, "o_proj"),
                                                 (3, "up_proj"), (3, "down_proj"), (4, "in_proj"), (4, "out_proj"))]
CURRENT = ("Float8CurrentScaling", {"fp8_format": "HYBRID"})


@pytest.mark.parametrize("cfg, names, recipe", [
    (None, [], CURRENT),  # the overlay alone: the paper's N = 4 leaves all 6 of TINY's layers in BF16
    (FP8Config(backend="transformer_engine", exclude_first_n=2, exclude_last_n=1), ELIGIBLE, CURRENT),
    (FP8Config(backend="transformer_engine", exclude_first_n=2, exclude_last_n=1, recipe="delayed"),
     ELIGIBLE, ("DelayedScaling", {"fp8_format": "HYBRID", "amax_history_len": 16, "amax_compute_algo": "max"})),
], ids=["overlay-alone", "current", "delayed"])
def test_te_plugin_runs_the_papers_recipe_after_attach(stand_in_te, monkeypatch, cfg, names, recipe):
    """What Lightning's plugin does after :func:`attach_to_trainer`, through its public methods:
    ``convert_module`` leaves every linear but the eligible ones a torch Linear (left alone, it
    would convert every 8x16-divisible one), weights unchanged, and ``forward_context`` hands TE's
    ``fp8_autocast`` the recipe nvrepro built."""
    plugin = te_plugin()
    model = build_model(TINY)
    before = {n: m.weight.detach().clone() for n, m in model.named_modules() if isinstance(m, nn.Linear)}
    with monkeypatch.context() as patch:
        patch.setattr(torch.cuda, "is_available", lambda: True)  # convert_to_te needs a GPU
        assert attach_to_trainer(model, cfg, plugin) == names
    model = plugin.convert_module(model)
    for n, w in before.items():
        m = model.get_submodule(n)
        assert isinstance(m, stand_in_te.Linear) == (n in names) and torch.equal(m.weight.cpu(), w), n
    with warnings.catch_warnings():  # on a CPU, Lightning's fallback CUDA autocast turns itself off
        warnings.simplefilter("ignore")
        with plugin.forward_context():
            pass
    assert [(type(r).__name__, r.kwargs) for r in stand_in_te.autocasts] == [recipe]
    with pytest.raises(ConfigError, match="fp8.backend: 'emulated' would quantise a second time"):
        attach_to_trainer(model, FP8Config(backend="emulated"), plugin)


def test_te_precision_under_another_plugin_is_refused():
    """A strategy's own precision plugin that takes 'transformer-engine' (not Lightning's TE
    plugin) would skip the recipe: nvrepro refuses it whatever Lightning itself allows."""
    from lightning.pytorch.plugins.precision import Precision

    class StrategyOwnPrecision(Precision):
        precision = "transformer-engine"

    for cfg in (None, FP8Config(backend="transformer_engine")):
        with pytest.raises(ConfigError, match="trainer.strategy: .*--trainer.strategy ddp"):
            attach_to_trainer(build_model(TINY), cfg, StrategyOwnPrecision())


def test_flush_to_zero_fractions_closed_form():
    # amax 1 maps to the format's max; what lands under half the smallest subnormal rounds to 0:
    # E4M3 below 2^-10 / 448 ~ 2.2e-6, E5M2 below 2^-17 / 57344 ~ 1.3e-10.
    t = torch.tensor([1.0, -1e-7, 1e-3, 0.0, 1e-6, 2e-11])
    s = tensor_stats(t)
    assert s["amax"] == 1.0
    assert s["flushed_e4m3"] == pytest.approx(3 / 5)  # 1e-7, 1e-6, 2e-11 (the 0 is not counted)
    assert s["flushed_e5m2"] == pytest.approx(1 / 5)  # only 2e-11

    lin = nn.Linear(6, 1, bias=False)
    with record_fp8_stats(lin, [""]) as stats:
        lin(t[None]).backward(torch.tensor([[0.5]]))
    assert stats[""]["input"]["flushed_e4m3"] == pytest.approx(3 / 5)
    assert stats[""]["grad"] == {"amax": 0.5, "flushed_e4m3": 0.0, "flushed_e5m2": 0.0}


def test_module_trains_in_fp8_and_checkpoint_loads_with_weights_only(tmp_path):
    from nvrepro.core.data import SyntheticDataModule

    L.seed_everything(0)
    fp8 = dict(exclude_first_n=1, exclude_last_n=1, recipe="delayed")
    module, callback = CausalLMModule(model=TINY), FP8Training(fp8)
    data = SyntheticDataModule(task="mqar", vocab_size=64, seq_len=32, num_train=32, num_val=8,
                               batch_size=8, num_kv_pairs=4)
    trainer = L.Trainer(accelerator="cpu", max_steps=2, limit_val_batches=0, logger=False, callbacks=[callback],
                        enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path)
    trainer.fit(module, datamodule=data)
    assert callback.linears == fp8_linear_names(build_model(TINY), FP8Config(**fp8))
    assert {n for n, m in module.model.named_modules() if isinstance(m, FP8Linear)} == set(callback.linears)
    assert module.model.layers[1].mixer.up_proj.amax_history.abs().sum() > 0  # scales were tracked
    path = tmp_path / "fp8.ckpt"
    trainer.save_checkpoint(path)
    assert "fp8" not in torch.load(path, weights_only=True)["hyper_parameters"]  # FP8 is the trainer's
    restored = CausalLMModule.load_from_checkpoint(path, weights_only=True)  # FP8 and BF16 keys agree
    apply_fp8(restored.model, FP8Config(**fp8))
    for m in module.modules():  # the amax history is not checkpointed (keys stay those of BF16)
        if isinstance(m, FP8Linear):
            m.amax_history.zero_()
    ids = torch.randint(0, 64, (2, 16))
    torch.testing.assert_close(restored.eval()(ids), module.eval()(ids))


def test_callback_trains_the_same_weights_as_converting_by_hand(tmp_path):
    """The callback converts at setup, before the optimizer exists: the same run as converting
    the model before fit (the independent reference)."""
    from nvrepro.core.data import SyntheticDataModule

    fp8 = FP8Config(exclude_first_n=1, exclude_last_n=1)

    def run(use_callback: bool) -> dict:
        L.seed_everything(0)
        module = CausalLMModule(model=TINY)
        if not use_callback:
            apply_fp8(module.model, fp8)
        data = SyntheticDataModule(task="mqar", vocab_size=64, seq_len=32, num_train=32, num_val=8,
                                   batch_size=8, num_kv_pairs=4)
        L.Trainer(accelerator="cpu", max_steps=3, limit_val_batches=0, logger=False, enable_checkpointing=False,
                  callbacks=[FP8Training(fp8)] if use_callback else [], enable_progress_bar=False,
                  enable_model_summary=False, default_root_dir=tmp_path).fit(module, datamodule=data)
        return module.model.state_dict()

    by_callback, by_hand = run(True), run(False)
    for k in by_hand:
        torch.testing.assert_close(by_callback[k], by_hand[k], rtol=0, atol=0, msg=k)


def test_full_scale_fp8_command_resolves(capsys):
    """The command documented in nvrepro.core.training.precision and configs/hybrid/fp8_toy.yaml."""
    import yaml

    from nvrepro.cli import main

    args = ["fit", "--config", "configs/hybrid/nemotron_h_8b.yaml", "--config",
            "configs/scale/multinode_fsdp.yaml", "--config", "configs/scale/fp8.yaml",
            "--trainer.strategy", "ddp"]
    with pytest.raises(SystemExit) as exit_info:
        main([a if not a.startswith("configs/") else str(ROOT / a) for a in args] + ["--print_config"])
    out, err = capsys.readouterr()
    assert exit_info.value.code in (0, None), err
    resolved = yaml.safe_load(out)
    assert resolved["trainer"]["precision"] == "transformer-engine" and resolved["trainer"]["num_nodes"] == 4
    [callback] = resolved["trainer"]["callbacks"]
    assert callback["class_path"].endswith("FP8Training")
    assert as_fp8_config(callback["init_args"]["fp8"]) == FP8Config(backend="transformer_engine")
