"""MiniPuzzle: importance, pruning, the memory arithmetic of candidates, and distillation.

Every check compares with an independent computation: a model with the layer deleted by hand,
an FFN written as an explicit sum over neurons, a hand-computed KL, the closed-form parameter
count, and the hand-written 47B config.
"""

import copy
import math

import lightning as L
import pytest
import torch
from torch import nn

from nvrepro.core.lm.config import ConfigError, ModelConfig, model_config_from_yaml
from nvrepro.core.data import SyntheticDataModule
from nvrepro.core.lm.info import count_parameters
from nvrepro.core.lm.model import PatternLM, build_model
from nvrepro.core.training.weights import load_lm, save_lm
from nvrepro.hybrid.distill import DistillationModule, kd_loss
from nvrepro.hybrid.minipuzzle import (ffn_neuron_importance, layer_importance, layers_to_keep, prune_ffn,
                                       prune_model, top_neurons)
from nvrepro.hybrid.search import (GIB, MemoryBudget, candidate_grid, max_context, memory_estimate,
                                   placeholder_importance)
from nvrepro.core.tooling.paths import REPO_ROOT

ROOT = REPO_ROOT
TINY = dict(pattern="M-*-M-", d_model=16, vocab_size=32, max_seq_len=64,
            mamba=dict(n_heads=2, head_dim=16, d_state=4, chunk_size=8),
            attention=dict(n_heads=2, n_kv_heads=1, head_dim=8), ffn=dict(hidden=24))


@pytest.fixture(autouse=True)
def one_thread():
    # A 2-thread pool on a busy shared CPU is far slower than one thread; keep the tests quick.
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def tiny_model(seed=0, **overrides) -> PatternLM:
    torch.manual_seed(seed)
    return PatternLM(ModelConfig.from_dict({**TINY, **overrides})).double().eval()


def batches(n=2, b=2, l=12, vocab=32, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return [{"input_ids": torch.randint(vocab, (b, l), generator=gen),
             "labels": torch.randint(vocab, (b, l), generator=gen)} for _ in range(n)]


def final_hidden_without(model: PatternLM, drop: int | None, ids: torch.Tensor) -> torch.Tensor:
    """Reference: a copy of the model with layer ``drop`` deleted and the LM head removed."""
    ref = copy.deepcopy(model)
    if drop is not None:
        del ref.layers[drop]
    ref.lm_head = nn.Identity()
    with torch.no_grad():
        return ref(ids)


# --- layer importance ---------------------------------------------------------------------

def test_layer_importance_matches_deleting_each_layer_by_hand():
    model, data = tiny_model(), batches()
    scores = layer_importance(model, data, progress=False)
    for i in range(model.cfg.n_layers):
        expected = sum(((final_hidden_without(model, i, b["input_ids"])
                         - final_hidden_without(model, None, b["input_ids"])) ** 2).mean()
                       for b in data) / len(data)
        assert math.isclose(scores[i].item(), expected.item(), rel_tol=1e-9, abs_tol=1e-15), i


def output_projection(block):
    return {"M": "out_proj", "*": "o_proj", "-": "down_proj"}[block.kind]


def test_zeroed_layer_has_zero_importance_and_a_loud_layer_the_largest():
    model = tiny_model()
    with torch.no_grad():
        for i, block in enumerate(model.layers):
            weight = getattr(block.mixer, output_projection(block)).weight
            # layer 1 (FFN) outputs 0: an identity block; layer 4 (Mamba) shouts; the rest whisper
            weight.mul_({1: 0.0, 4: 50.0}.get(i, 0.01))
    for normed in (True, False):
        scores = layer_importance(model, batches(), normed=normed, progress=False)
        assert scores[1].item() == 0.0
        assert (scores[[0, 2, 3, 5]] > 0).all()
        assert int(scores.argmax()) == 4 and scores[4] > 10 * scores[[0, 2, 3, 5]].max()


def test_layers_to_keep_drops_the_least_important_of_each_kind():
    pattern = "M-M*-M-*"
    importance = [5, 1, 0.5, 9, 2, 3, 0.1, 4]  # M: 0, 2, 5; '-': 1, 4, 6; '*': 3, 7
    assert layers_to_keep(pattern, importance, {"M": 2, "-": 1, "*": 1}) == [0, 3, 4, 5]
    assert layers_to_keep(pattern, [0.0] * 8, {"M": 1}) == [1, 3, 4, 5, 6, 7]  # ties: earlier goes first
    with pytest.raises(ConfigError, match=r"keep\['\*'\]"):
        layers_to_keep(pattern, importance, {"*": 3})


# --- FFN neurons ----------------------------------------------------------------------------

@pytest.mark.parametrize("activation", ["relu2", "swiglu"])
def test_pruned_ffn_is_exactly_the_sum_over_kept_neurons(activation):
    model = tiny_model(ffn=dict(hidden=24, activation=activation))
    ffn = model.layers[1].mixer
    keep = torch.tensor([0, 3, 4, 10, 17, 23])
    state = prune_ffn(ffn, keep)
    assert torch.equal(state["up_proj.weight"], ffn.up_proj.weight[keep])
    assert torch.equal(state["down_proj.weight"], ffn.down_proj.weight[:, keep])
    x = torch.randn(3, 5, 16, dtype=torch.float64)
    expected = torch.zeros_like(x)
    for j in keep.tolist():  # down[:, j] * act_j(x), one neuron at a time
        up = x @ ffn.up_proj.weight[j]
        act = torch.relu(up) ** 2 if activation == "relu2" else torch.nn.functional.silu(x @ ffn.gate_proj.weight[j]) * up
        expected += act[..., None] * ffn.down_proj.weight[:, j]
    pruned = model.layers[1].mixer.__class__(16, model.cfg.ffn.__class__(hidden=len(keep), activation=activation)).double()
    pruned.load_state_dict(state)
    torch.testing.assert_close(pruned(x), expected, rtol=1e-12, atol=1e-12)


def test_neuron_importance_statistics_and_a_dead_neuron():
    model, data = tiny_model(), batches()
    with torch.no_grad():
        model.layers[1].mixer.up_proj.weight[7].zero_()  # relu(0)^2 = 0 on every token
    inputs = []
    handle = model.layers[1].mixer.register_forward_pre_hook(lambda m, a: inputs.append(a[0]))
    scores = ffn_neuron_importance(model, data, progress=False)
    handle.remove()
    x = torch.cat([t.reshape(-1, 16) for t in inputs[:len(data)]])
    act = torch.relu(x @ model.layers[1].mixer.up_proj.weight.T) ** 2  # (tokens, 24)
    torch.testing.assert_close(scores[1]["mean"], act.mean(0))
    torch.testing.assert_close(scores[1]["l2"], act.square().sum(0).sqrt())
    assert set(scores) == {1, 3, 5}
    assert scores[1]["l2"][7] == 0 and 7 not in top_neurons(scores[1]["l2"], 23).tolist()


def test_pruned_model_equals_the_parent_with_layers_deleted_and_neurons_masked():
    model, data = tiny_model(), batches()
    neurons = ffn_neuron_importance(model, data, progress=False)
    keep_layers, width = [0, 1, 2, 4, 5], 16
    child = prune_model(model, keep_layers, width, neurons)
    assert child.cfg.pattern == "M-*M-" and child.cfg.ffn.hidden == width
    ref = copy.deepcopy(model)
    with torch.no_grad():
        for i in (1, 5):  # zeroing a dropped neuron's down column removes its contribution exactly
            dropped = sorted(set(range(24)) - set(top_neurons(neurons[i]["l2"], width).tolist()))
            ref.layers[i].mixer.down_proj.weight[:, dropped] = 0
    del ref.layers[3]
    ids = data[0]["input_ids"]
    with torch.no_grad():
        torch.testing.assert_close(child(ids), ref(ids), rtol=1e-10, atol=1e-10)
    assert torch.equal(child.layers[3].mixer.in_proj.weight, model.layers[4].mixer.in_proj.weight)


# --- candidates and memory ------------------------------------------------------------------

def closed_form_params(cfg: ModelConfig) -> int:
    d, m, a, f = cfg.d_model, cfg.mamba, cfg.attention, cfg.ffn
    di, conv = m.n_heads * m.head_dim, m.n_heads * m.head_dim + 2 * m.n_groups * m.d_state
    mamba = d + d * (2 * di + 2 * m.n_groups * m.d_state + m.n_heads) + conv * m.d_conv + conv \
        + 3 * m.n_heads + di + di * d
    attn = d + 2 * d * a.n_heads * a.head_dim + 2 * d * a.n_kv_heads * a.head_dim
    ffn = d + (3 if f.activation == "swiglu" else 2) * d * f.hidden
    return (2 * cfg.vocab_size * d + d + cfg.count("M") * mamba + cfg.count("*") * attn
            + cfg.count("-") * ffn)


def test_candidate_memory_is_the_closed_form():
    parent = ModelConfig.from_dict({**TINY, "pattern": "M-M*-M-*-"})
    budget = MemoryBudget(limit_bytes=10**9, weight_dtype="fp4", cache_dtype="fp8", context=1000, batch=3)
    grid = candidate_grid(parent, placeholder_importance(parent), {"M": [3, 2], "*": [1]}, [24, 10], budget)
    assert len(grid) == 4
    for cand in grid:
        cfg, m = cand.config, cand.config.mamba
        params = closed_form_params(cfg)
        kv = 2 * cfg.count("*") * 3 * 1000 * 1 * 8 * 1  # K and V, batch 3, 1 kv head x 8, fp8
        ssm = cfg.count("M") * 3 * ((m.n_heads * m.head_dim + 2 * m.d_state) * m.d_conv * 1
                                    + m.n_heads * m.head_dim * m.d_state * 4)
        mem = cand.memory
        assert (mem.params, mem.weight_bytes, mem.kv_cache_bytes, mem.ssm_state_bytes) == \
            (params, math.ceil(params / 2), kv, ssm)
        assert cand.fits


def test_max_context_is_the_longest_that_fits():
    cfg = model_config_from_yaml(ROOT / "configs" / "hybrid" / "nemotron_h_47b.yaml")
    budget = MemoryBudget(limit_bytes=32 * GIB, weight_dtype="fp4", cache_dtype="fp8")
    ctx = int(max_context(cfg, budget))

    def total(c):
        return memory_estimate(cfg, MemoryBudget(budget.limit_bytes, "fp4", "fp8", context=c)).total_bytes
    assert total(ctx) <= budget.limit_bytes < total(ctx + 1)


def test_56b_grid_yields_the_47b_shape():
    c56 = model_config_from_yaml(ROOT / "configs" / "hybrid" / "nemotron_h_56b.yaml")
    c47 = model_config_from_yaml(ROOT / "configs" / "hybrid" / "nemotron_h_47b.yaml")
    budget = MemoryBudget(limit_bytes=32 * GIB, weight_dtype="fp4", cache_dtype="fp8", context=2**19)
    (cand,) = candidate_grid(c56, placeholder_importance(c56), {"M": [44], "*": [5], "-": [49]}, [30720], budget)
    assert [cand.config.count(k) for k in "M*-"] == [c47.count(k) for k in "M*-"] == [44, 5, 49]
    assert cand.config.ffn.hidden == c47.ffn.hidden
    assert cand.memory.params == count_parameters(c47)[0] == 46_856_446_976  # README / nvrepro info
    # The same parent-to-child surgery runs on the meta device (shapes only).
    scores = {i: {"l2": torch.zeros(c56.ffn.hidden)} for i, k in enumerate(c56.pattern) if k == "-"}
    child = prune_model(build_model(c56, device="meta"), cand.keep_layers, 30720, scores)
    assert child.cfg.pattern == cand.pattern and child.embed.weight.is_meta


# --- distillation -----------------------------------------------------------------------------

def test_kd_loss_is_zero_for_equal_logits_and_matches_a_hand_computed_kl():
    logits = torch.randn(2, 5, 7)
    assert kd_loss(logits, logits.clone()).item() == pytest.approx(0.0, abs=1e-7)
    teacher = torch.tensor([[[0.0, math.log(3.0)], [1.0, 2.0]]])  # p_t = (1/4, 3/4) at position 0
    student = torch.tensor([[[5.0, 5.0], [0.0, 0.0]]])  # p_s = (1/2, 1/2)
    labels = torch.tensor([[1, -100]])  # position 1 is not supervised
    expected = 0.25 * math.log(0.25 / 0.5) + 0.75 * math.log(0.75 / 0.5)
    assert kd_loss(student, teacher, labels).item() == pytest.approx(expected, rel=1e-6)
    # Temperature 2: both softened (logits / 2), the KL scaled by 2^2.
    pt = torch.softmax(teacher[0, 0] / 2, -1)
    hand = 4 * float((pt * (pt / torch.tensor([0.5, 0.5])).log()).sum())
    assert kd_loss(student, teacher, labels, temperature=2.0).item() == pytest.approx(hand, rel=1e-6)


def tiny_trainer(tmp_path, steps):
    return L.Trainer(accelerator="cpu", devices=1, max_steps=steps, logger=False, enable_progress_bar=False,
                     enable_model_summary=False, limit_val_batches=2, num_sanity_val_steps=0,
                     default_root_dir=tmp_path, enable_checkpointing=False)


def test_distillation_module_freezes_the_teacher_and_saves_only_the_student(tmp_path):
    L.seed_everything(0)
    teacher = PatternLM(ModelConfig.from_dict(TINY))
    teacher_before = copy.deepcopy(teacher.state_dict())
    path = save_lm(teacher, tmp_path / "parent.pt")
    student = prune_model(teacher, [0, 1, 2, 3], None)
    save_lm(student, tmp_path / "student.pt")
    module = DistillationModule(model=student.cfg.to_dict(), optim=dict(lr=1e-2, warmup_steps=1),
                                teacher=str(path), student_init=str(tmp_path / "student.pt"))
    data = SyntheticDataModule(task="copy", vocab_size=32, seq_len=16, num_train=32, num_val=8, batch_size=8)
    trainer = tiny_trainer(tmp_path, 3)
    trainer.fit(module, datamodule=data)
    assert not module.teacher.training and not any(p.requires_grad for p in module.teacher.parameters())
    optimized = {id(p) for g in trainer.optimizers[0].param_groups for p in g["params"]}
    assert not optimized & {id(p) for p in module.teacher.parameters()}
    for k, v in module.teacher.state_dict().items():
        assert torch.equal(v, teacher_before[k]), k
    assert not torch.equal(module.model.embed.weight, student.embed.weight)  # the student trained
    metrics = trainer.validate(module, datamodule=data, verbose=False)[0]
    assert {"val/kd", "val/agreement", "val/acc", "val/loss"} <= set(metrics)
    ckpt = tmp_path / "distilled.ckpt"
    trainer.save_checkpoint(ckpt)
    raw = torch.load(ckpt, weights_only=True)
    assert raw["state_dict"] and not [k for k in raw["state_dict"] if k.startswith("teacher.")]
    restored = load_lm(ckpt)
    ids = torch.randint(32, (2, 8))
    torch.testing.assert_close(restored(ids), module.model(ids))


def test_student_equal_to_teacher_has_zero_training_loss():
    teacher = tiny_model().float()
    module = DistillationModule.from_models(teacher, copy.deepcopy(teacher))
    loss = module._step(batches(1)[0], "train")  # KD loss of the training step (logging is a no-op)
    assert loss.item() == pytest.approx(0.0, abs=1e-6)


def test_student_init_of_another_shape_is_named(tmp_path):
    teacher = PatternLM(ModelConfig.from_dict(TINY))
    save_lm(teacher, tmp_path / "s.pt")
    with pytest.raises(ConfigError, match=r"model: student_init .*pattern: 'M-\*M-' vs 'M-\*-M-'"):
        DistillationModule(model={**TINY, "pattern": "M-*M-"}, student_init=str(tmp_path / "s.pt"))


# --- exercise checkers ----------------------------------------------------------------------

def test_exercise_checkers_accept_the_reference_and_name_the_usual_slips():
    import torch.nn.functional as F

    from nvrepro.hybrid import exercises

    def forward_kl(s, t):
        log_s, log_t = F.log_softmax(s, -1), F.log_softmax(t, -1)
        return (log_t.exp() * (log_t - log_s)).sum(-1).mean()

    def not_yet(*args):
        raise NotImplementedError

    assert exercises.check_kd_loss_fn(not_yet, verbose=False).ok is None
    assert exercises.check_kd_loss_fn(forward_kl, verbose=False).ok is True
    reverse = exercises.check_kd_loss_fn(lambda s, t: forward_kl(t, s), verbose=False)
    assert reverse.ok is False and "reverse" in reverse.message

    def prune(up, down, scores, k):
        keep = torch.topk(scores, k).indices
        return up[keep], down[:, keep]

    assert exercises.check_ffn_prune_fn(not_yet, verbose=False).ok is None
    assert exercises.check_ffn_prune_fn(prune, verbose=False).ok is True
    lowest = exercises.check_ffn_prune_fn(lambda u, d, s, k: prune(u, d, -s, k), verbose=False)
    assert lowest.ok is False and "lowest" in lowest.message
    assert exercises.check_ffn_prune_fn(lambda u, d, s, k: (u[:k], d[:k]), verbose=False).ok is False

    model, data = tiny_model(), batches()
    assert exercises.check_importance_additivity(None, model, data, verbose=False).ok is None
    verdicts = [exercises.check_importance_additivity(a, model, data, verbose=False).ok
                for a in exercises.ADDITIVITY_ANSWERS]
    assert verdicts.count(True) == 1


def test_experiment_smoke_profile_is_consistent():
    from nvrepro.hybrid.minipuzzle_experiment import PROFILES, RECOVERY, run_minipuzzle

    result = run_minipuzzle("smoke", seed=0, progress=False)
    rows = {r["model"]: r for r in result["table"]}
    best = result["candidates"][0]
    # The search's evaluation of the pruned model and the training probe's step-0 evaluation are
    # two separate passes over the same held-out batches: they must agree.
    assert rows["pruned (no training)"]["acc"] == best["acc"]
    assert rows["pruned (no training)"]["agreement"] == best["agreement"]
    assert rows["parent"]["agreement"] == 1.0
    assert all(c["memory_bytes"] <= result["budget"]["limit_bytes"] for c in result["candidates"])
    curve = result["curves"]["distilled"]
    assert curve[0]["step"] == 0 and curve[-1]["step"] == PROFILES["smoke"]["distill_steps"]
    parts = RECOVERY.judge(result).to_dict()["evidence"]["parts"]
    assert len(parts) == 3  # no scratch run at the parent's budget in smoke
    assert min(result["decode"].values()) > 0
    # Every evaluation carries its counts: all held-out positions are supervised.
    p = PROFILES["smoke"]
    positions = p["eval_batches"] * p["data"]["batch_size"] * p["data"]["seq_len"]
    for row in result["table"]:
        assert row["count"] == positions and row["acc"] == row["correct"] / positions
        assert row["agreement"] == row["agree"] / positions
    assert rows["parent"]["agree"] == positions
    assert [len(t) for t in result["decode_seconds_per_token"].values()] == [p["decode"]["repeats"]] * 2


# --- the claims of minipuzzle_layer_importance and minipuzzle_recovery (hand-made metrics) ------

def test_layer_importance_claim_on_agreement_intervals(wilson_bounds):
    from nvrepro.hybrid.minipuzzle_experiment import LAYER_IMPORTANCE

    def metrics(best_agree, reverse_agree, n=1000):
        return {"candidates": [{"agree": best_agree, "count": n}],
                "reverse_metrics": {"agree": reverse_agree, "count": n}}
    # 600/1000: [0.569, 0.630]; 500/1000: [0.469, 0.531] by hand: separated
    assert wilson_bounds(600, 1000)[0] > wilson_bounds(500, 1000)[1]
    assert LAYER_IMPORTANCE.judge(metrics(600, 500)).held is True
    assert LAYER_IMPORTANCE.judge(metrics(500, 600)).held is False
    # 52/100 vs 50/100 overlap: not separated
    assert wilson_bounds(52, 100)[0] < wilson_bounds(50, 100)[1]
    assert LAYER_IMPORTANCE.judge(metrics(52, 50, n=100)).held is None


def recovery_metrics(parent=540, distilled=520, scratch=300, scratch_parent=None, n=1000,
                     pruned_ms=(1.0, 1.1, 1.2, 1.3, 1.4), parent_ms=(2.0, 2.1, 2.2, 2.3, 2.4)) -> dict:
    rows = [("parent", parent), ("pruned (no training)", 500), ("pruned + distilled", distilled),
            ("scratch, same tokens", scratch)]
    if scratch_parent is not None:
        rows.append(("scratch, parent's tokens", scratch_parent))
    return {"table": [{"model": name, "correct": k, "count": n} for name, k in rows],
            "decode_seconds_per_token": {"parent": list(parent_ms), "pruned": list(pruned_ms)}}


def test_recovery_claim_holds_when_every_part_is_separated(wilson_bounds):
    from nvrepro.hybrid.minipuzzle_experiment import RECOVERY

    # 90% of 0.540 = 0.486; distilled 520/1000 has Wilson low 0.489 by hand: clears it
    assert wilson_bounds(520, 1000)[0] > 0.9 * 0.540
    judgement = RECOVERY.judge(recovery_metrics(scratch_parent=400))
    assert judgement.held is True and len(judgement.to_dict()["evidence"]["parts"]) == 4
    timing = judgement.to_dict()["evidence"]["parts"]["pruned decodes faster"]["evidence"]
    assert timing["p_greater"] == pytest.approx(1 / math.comb(10, 5))  # 5 vs 5 blocks, separated: 1/252


def test_recovery_claim_fails_or_stays_undecided_part_by_part(wilson_bounds):
    from nvrepro.hybrid.minipuzzle_experiment import RECOVERY

    def verdicts(**kw):
        j = RECOVERY.judge(recovery_metrics(**kw))
        return j.held, {name: p["held"] for name, p in j.to_dict()["evidence"]["parts"].items()}
    # the run of record's outcome: scratch on the parent's budget above distilled -> fails
    held, parts = verdicts(scratch_parent=600)
    assert held is False and parts["distilled beats scratch on the parent's tokens"] is False
    # 470/1000: Wilson high 0.501 by hand, below 90% of 0.560 = 0.504 -> fails
    assert wilson_bounds(470, 1000)[1] < 0.9 * 0.560
    held, parts = verdicts(parent=560, distilled=470)
    assert held is False and parts["distilled recovers >= 90% of the parent's accuracy"] is False
    # 490/1000: [0.459, 0.521] straddles 0.486 -> undecided; scratch 480/1000 overlaps it too
    held, parts = verdicts(distilled=490, scratch=480)
    assert held is None
    assert parts["distilled recovers >= 90% of the parent's accuracy"] is None
    assert parts["distilled beats scratch on the same tokens"] is None
    # one timed block each (smoke): the speed part cannot be decided
    held, parts = verdicts(pruned_ms=(1.0,), parent_ms=(2.0,))
    assert held is None and parts["pruned decodes faster"] is None
