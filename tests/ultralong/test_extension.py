"""The extension / ablation experiment plumbing (the full runs are the notebooks' smoke tests)."""

import pytest
import torch

from nvrepro.core.lm.config import ConfigError, model_config_from_yaml
from nvrepro.ultralong import exercises
from nvrepro.ultralong.ablations import INSTRUCT_YAML
from nvrepro.ultralong.base import BASE_YAML, train_base
from nvrepro.ultralong.extension import arm_yaml, plan, rescale, short_len, train
from nvrepro.core.training.yaml_fit import read_cli_yaml


def test_plan_and_arm_errors_name_the_field():
    with pytest.raises(ConfigError, match="profile"):
        plan("huge")
    with pytest.raises(ConfigError, match="method"):
        arm_yaml("rope2")


def test_configs_agree_base_arms_instruct():
    base = model_config_from_yaml(BASE_YAML)
    base_data = read_cli_yaml(BASE_YAML)["data"]["init_args"]
    assert base_data["seq_len"] == base.max_seq_len == short_len()
    sft = model_config_from_yaml(INSTRUCT_YAML)
    yarn = model_config_from_yaml(arm_yaml("yarn"))
    assert sft.to_dict() == yarn.to_dict()  # SFT keeps the extended model; only the data is short
    sft_data = read_cli_yaml(INSTRUCT_YAML)["data"]["init_args"]
    assert sft_data["seq_len"] == base.max_seq_len
    for m in ("none", "linear", "ntk", "yarn"):
        cfg = read_cli_yaml(arm_yaml(m))
        d = cfg["data"]["init_args"]
        assert cfg["data"]["class_path"].endswith("extension_recipe.ExtensionDataModule")
        # the base's tokenizer and retrieval documents, now up to the new length
        for key in ("corpus", "tokenizer", "bpe_vocab_size", "separator", "retrieval_kinds", "retrieval_min_len",
                    "retrieval_supervise"):
            assert d[key] == base_data[key], (m, key)
        assert sft_data["tokenizer"] == base_data["tokenizer"] and sft_data["bpe_vocab_size"] == base_data["bpe_vocab_size"]
        assert d["seq_len"] == model_config_from_yaml(arm_yaml(m)).max_seq_len == 8 * base.max_seq_len
        (stage,) = d["curriculum"]
        assert stage["seq_len"] == d["seq_len"] and stage["steps"] == cfg["trainer"]["max_steps"]
        assert cfg["model"]["init_args"]["init_from"].endswith(
            read_cli_yaml(BASE_YAML)["trainer"]["callbacks"][0]["init_args"]["filename"] + ".ckpt")


def test_rescale_keeps_weights_and_only_none_matches_the_base():
    _, base, _ = train_base("smoke", seed=0)
    x = torch.randint(0, 1000, (1, 64))
    base.eval()
    ref = base(x)
    for m in ("none", "linear", "ntk", "yarn"):
        model = rescale(base, m).eval()
        assert all(torch.equal(a, b) for a, b in zip(base.state_dict().values(), model.state_dict().values()))
        same = torch.allclose(model(x), ref, atol=1e-6)
        assert same == (m == "none"), m


def test_arm_training_is_deterministic_for_a_seed():
    key, base, _ = train_base("smoke", seed=0)
    stage = [dict(steps=2, seq_len=2048, batch_size=2, retrieval_share=0.5)]
    kw = dict(steps=2, init=(key, base.state_dict()), data_overrides={"max_documents": 60, "curriculum": stage},
              cache=False)
    _, a = train(arm_yaml("yarn"), seed=5, **kw)
    _, b = train(arm_yaml("yarn"), seed=5, **kw)
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))
    assert not all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), base.state_dict().values()))


def test_two_step_token_exercise():
    (stage,) = read_cli_yaml(arm_yaml("yarn"))["data"]["init_args"]["curriculum"]
    steps = stage["steps"]
    ratio = ((steps // 2) * 0.5 + (steps - steps // 2)) / steps  # half the tokens per step in the first half
    assert exercises.check_two_step_tokens(ratio, verbose=False).ok is True
    assert exercises.check_two_step_tokens(1.0, verbose=False).ok is False
    assert exercises.check_two_step_tokens(None, verbose=False).ok is None


def test_mean_at_length_exercise():
    grid = {"lengths": [10, 20], "depths": [0.0, 1.0], "accuracy": [[1.0, 0.0], [0.5, 1.0]]}
    result = {"methods": {"yarn": {"eval": {"niah": grid}}}}
    ok = exercises.check_mean_at_length(lambda g, n: [0.75, 0.5][g["lengths"].index(n)], result, verbose=False)
    assert ok.ok is True
    rows = exercises.check_mean_at_length(lambda g, n: [0.5, 0.75][g["depths"].index(0.0)], result, verbose=False)
    assert rows.ok is False

    def todo(g, n):
        raise NotImplementedError

    assert exercises.check_mean_at_length(todo, result, verbose=False).ok is None


def test_response_scores_match_masked_lm_loss():
    from nvrepro.core.lm.config import AttentionConfig, FFNConfig, ModelConfig
    from nvrepro.core.lm.model import PatternLM
    from nvrepro.core.training.module import causal_lm_loss
    from nvrepro.ultralong.ablations import response_scores
    from nvrepro.ultralong.tasks import TaskExample

    torch.manual_seed(0)
    model = PatternLM(ModelConfig(pattern="*-", d_model=32, vocab_size=260, max_seq_len=64,
                                 attention=AttentionConfig(n_heads=2, n_kv_heads=2, head_dim=16),
                                 ffn=FFNConfig(hidden=64)))
    ex = [TaskExample("t", [5, 6, 7, 8], [9, 10, 11], ""), TaskExample("t", [1, 2], [3], "")]
    scores = response_scores(model, ex)
    for e, got in zip(ex, scores, strict=True):  # labels[t] = token t + 1 on the answer, -100 elsewhere
        ids = torch.tensor([e.prompt_ids + e.answer_ids])
        labels = torch.full_like(ids, -100)
        labels[0, len(e.prompt_ids) - 1:-1] = torch.tensor(e.answer_ids)
        with torch.no_grad():
            nll = causal_lm_loss(model(ids), labels).item() * len(e.answer_ids)
        assert got.count == len(e.answer_ids) and abs(got.nll_sum - nll) < 1e-4


def test_smoke_experiments_never_touch_the_cache(monkeypatch):
    """Smoke runs neither read nor write build/ultralong/, and cannot be asked to."""
    from nvrepro.core.training import arms
    from nvrepro.ultralong import context_extension, extension

    touched = []
    monkeypatch.setattr(arms, "load_cached", lambda path: touched.append(("load", path)))
    monkeypatch.setattr(arms, "save_cached", lambda path, payload: touched.append(("save", path)))
    extension.pretrain_base("smoke", seed=0)
    assert touched == []
    with pytest.raises(ValueError, match="only the paper profile"):
        context_extension.run("smoke", cache=True)


def test_stretched_changes_only_length_and_scale():
    from nvrepro.core.training.arms import merged_model_config
    from nvrepro.ultralong.extension import stretched

    for method in ("yarn", "ntk", "none"):
        yaml = arm_yaml(method)
        cfg = read_cli_yaml(yaml)
        (stage,) = cfg["data"]["init_args"]["curriculum"]
        # at the arm's own scale the overrides reproduce the YAML exactly
        model, data = stretched(yaml, 8, stage["steps"])
        assert merged_model_config(yaml, model) == cfg["model"]["init_args"]["model"]
        assert data == {"seq_len": cfg["data"]["init_args"]["seq_len"], "curriculum": [stage]}
        model, data = stretched(yaml, 16, 7)
        merged, ref = merged_model_config(yaml, model), cfg["model"]["init_args"]["model"]
        assert merged["max_seq_len"] == 16 * short_len() == data["seq_len"] == data["curriculum"][0]["seq_len"]
        assert data["curriculum"][0]["steps"] == 7
        scale = 1.0 if method == "none" else 16.0
        assert merged["attention"] == ref["attention"] | {"rope_factor": scale}
        assert {k: v for k, v in merged.items() if k not in ("max_seq_len", "attention")} == \
            {k: v for k, v in ref.items() if k not in ("max_seq_len", "attention")}
