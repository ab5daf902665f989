"""``nvrepro fit`` trains the Retro LM and its GPT baseline on a tiny database, end to end."""

import yaml

from nvrepro.cli import main
from nvrepro.core.lm.config import model_config_from_yaml
from nvrepro.core.tooling.paths import CONFIGS_DIR
from nvrepro.retro.model import RetroConfig, gpt_config

from .conftest import write_db_yaml


def test_toy_gpt_is_the_toy_retro_without_cca():
    retro = model_config_from_yaml(CONFIGS_DIR / "retro" / "toy_retro.yaml")
    gpt = model_config_from_yaml(CONFIGS_DIR / "retro" / "toy_gpt.yaml")
    assert isinstance(retro, RetroConfig) and gpt_config(retro).to_dict() == gpt.to_dict()


def test_fit_runs_both_arms_on_a_tiny_database(tmp_path):
    db_yaml = write_db_yaml(tmp_path / "data")
    for name in ("toy_retro", "toy_gpt"):
        cfg = yaml.safe_load((CONFIGS_DIR / "retro" / f"{name}.yaml").read_text())
        model = cfg["model"]["init_args"]["model"]
        model.update(d_model=32, max_seq_len=64, attention=dict(n_heads=2, n_kv_heads=2, head_dim=16, rope=True),
                     ffn=dict(hidden=64, activation="relu2"))
        if "chunk_len" in model:
            model["chunk_len"] = 8
        cfg["data"]["init_args"].update(database=db_yaml, seq_chunks=2, batch_size=2)
        cfg["trainer"] = dict(max_steps=3, limit_val_batches=1, val_check_interval=3, accelerator="cpu", devices=1,
                              logger=False, enable_checkpointing=False, enable_progress_bar=False,
                              default_root_dir=str(tmp_path / name))
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(cfg))
        assert main(["fit", "--config", str(path)]) in (0, None)
