"""``nvrepro fit`` trains both Cosmos modules from their YAMLs (SFT, then GRPO from the SFT checkpoint), and
one GRPO step moves the policy towards its higher-reward responses."""

import pytest
import torch
import yaml

from nvrepro.cli import main
from nvrepro.core.tooling.paths import CONFIGS_DIR

SMALL = dict(d_model=32, attention=dict(n_heads=2, n_kv_heads=2, head_dim=16, rope=True), ffn=dict(hidden=64),
             mamba=dict(n_heads=2, head_dim=16, d_state=8, n_groups=1, chunk_size=16),
             vision=dict(image_size=32, patch_size=4, d_model=16, n_layers=1, n_heads=2))


def _config(tmp_path, name: str, **data) -> dict:
    cfg = yaml.safe_load((CONFIGS_DIR / "cosmos" / name).read_text())
    cfg["model"]["init_args"]["model"].update(SMALL)
    cfg["data"]["init_args"].update(num_train=8, num_val=4, batch_size=2, **data)
    cfg["trainer"] = dict(max_steps=2, limit_val_batches=1, val_check_interval=2, accelerator="cpu", devices=1,
                          logger=False, enable_progress_bar=False, default_root_dir=str(tmp_path))
    return cfg


def test_nvrepro_fit_runs_sft_then_grpo_from_its_checkpoint(tmp_path):
    sft = _config(tmp_path / "sft", "toy_sft.yaml")
    sft["trainer"]["callbacks"] = [{"class_path": "lightning.pytorch.callbacks.ModelCheckpoint",
                                    "init_args": {"dirpath": str(tmp_path / "ckpt"), "filename": "sft"}}]
    (tmp_path / "sft.yaml").write_text(yaml.safe_dump(sft))
    assert main(["fit", "--config", str(tmp_path / "sft.yaml")]) in (0, None)
    checkpoint = tmp_path / "ckpt" / "sft.ckpt"
    assert checkpoint.is_file()
    rl = _config(tmp_path / "rl", "toy_rl.yaml")
    rl["model"]["init_args"]["grpo"].update(group_size=2, max_new_tokens=6)
    rl["model"]["init_args"]["init_from"] = str(checkpoint)
    rl["trainer"]["enable_checkpointing"] = False
    (tmp_path / "rl.yaml").write_text(yaml.safe_dump(rl))
    assert main(["fit", "--config", str(tmp_path / "rl.yaml")]) in (0, None)


def test_fit_refuses_a_group_of_one(tmp_path):
    rl = _config(tmp_path, "toy_rl.yaml")
    rl["model"]["init_args"]["grpo"]["group_size"] = 1
    rl["trainer"]["enable_checkpointing"] = False
    (tmp_path / "rl.yaml").write_text(yaml.safe_dump(rl))
    with pytest.raises(ValueError, match="grpo.group_size"):  # jsonargparse wraps our ConfigError
        main(["fit", "--config", str(tmp_path / "rl.yaml")])


def test_one_grpo_step_raises_the_likelihood_of_rewarded_responses():
    from nvrepro.core.training.yaml_fit import module_from_yaml
    from nvrepro.cosmos.data import ClipQA, collate_prompts
    from nvrepro.cosmos.sampling import response_log_probs

    torch.manual_seed(0)
    module = module_from_yaml(CONFIGS_DIR / "cosmos" / "toy_rl.yaml", model={**module_from_yaml(
        CONFIGS_DIR / "cosmos" / "toy_rl.yaml").model_config.to_dict(), **SMALL},
        grpo=dict(group_size=4, max_new_tokens=8, beta=0.0, temperature=1.5))
    module.on_fit_start()
    batch = collate_prompts([ClipQA(2, "val", tokens_per_frame=16)[i] for i in range(2)])
    # Reward half of each group's sampled responses (distinct random strings from an untrained model).
    rollout = module._rollout(batch, 4, 1.5)
    prompts = [p for p in batch["prompts"] for _ in range(4)]
    pixels = batch["pixel_values"].repeat_interleave(4, 0)
    masks = batch["image_mask"].repeat_interleave(4, 0)
    assert len({tuple(r) for r in rollout["responses"]}) == 8
    rewards = torch.tensor([1.0, 0.0, 1.0, 0.0, 0.0, 1.0, 0.0, 1.0])
    from nvrepro.cosmos.grpo import group_advantages, grpo_loss

    opt = torch.optim.SGD(module.model.parameters(), lr=0.5)
    before, mask = response_log_probs(module.model, prompts, rollout["responses"], pixels, masks, 258)
    loss = grpo_loss(before, before.detach(), group_advantages(rewards, 4), mask).loss
    loss.backward()
    opt.step()
    with torch.no_grad():
        after, _ = response_log_probs(module.model, prompts, rollout["responses"], pixels, masks, 258)
    change = ((after - before.detach()) * mask).sum(1)
    advantages = group_advantages(rewards, 4)
    # responses with a positive advantage gain likelihood relative to those with a negative one
    assert change[advantages > 0].mean() > change[advantages < 0].mean()


def test_a_cached_grpo_arm_returns_its_curve_without_training(tmp_path, monkeypatch):
    from nvrepro.core.training import arms
    from nvrepro.core.training.arms import train_arm

    yaml_path = CONFIGS_DIR / "cosmos" / "toy_rl.yaml"
    kwargs = dict(seed=0, cache_dir=tmp_path, steps=1, cache=True, record="history",
                  model_overrides=SMALL, data_overrides=dict(batch_size=2, num_train=4),
                  module_overrides=dict(grpo=dict(group_size=2, max_new_tokens=4)))
    key, model, history = train_arm(yaml_path, **kwargs)
    assert len(history) == 1 and set(history[0]) >= {"reward", "accuracy", "format", "kl"}

    def no_training(*args, **kw):
        raise AssertionError("a cached arm must not train again")

    monkeypatch.setattr(arms, "quiet_fit", no_training)
    key2, model2, history2 = train_arm(yaml_path, **kwargs)
    assert key2 == key and history2 == history
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), model2.state_dict().values()))
