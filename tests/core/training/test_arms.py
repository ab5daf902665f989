"""Cached experiment arms: the model config a YAML plus overrides gives."""

from nvrepro.core.tooling.paths import CONFIGS_DIR
from nvrepro.core.training.arms import merged_model_config

YAML = CONFIGS_DIR / "hybrid" / "toy_hybrid.yaml"


def test_overrides_replace_scalars_and_update_sub_configs_key_by_key():
    import yaml

    declared = yaml.safe_load(YAML.read_text())["model"]["init_args"]["model"]
    merged = merged_model_config(YAML, {"d_model": 48, "attention": {"n_heads": 2}})
    assert merged["d_model"] == 48 and merged["attention"]["n_heads"] == 2
    assert {k: v for k, v in merged["attention"].items() if k != "n_heads"} == \
        {k: v for k, v in declared["attention"].items() if k != "n_heads"}
    assert merged_model_config(YAML) == declared
