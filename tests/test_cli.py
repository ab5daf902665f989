"""The command line: every YAML resolves with --print_config; bad keys are named."""


import pytest
import yaml

from nvrepro.cli import main
from nvrepro.core.tooling.paths import REPO_ROOT

ROOT = REPO_ROOT
# Training configs (a `model` section naming a LightningModule by class_path); database configs (`database`) are
# checked in tests/core/retrieval, `nvrepro trust` run configs (a `model` section naming an adapter) in tests/trust.
MODEL_CONFIGS = sorted(p for p in (ROOT / "configs").rglob("*.yaml")
                       if p.parent.name != "scale"
                       and "class_path" in ((yaml.safe_load(p.read_text()) or {}).get("model") or {}))
OVERLAYS = sorted((ROOT / "configs" / "scale").glob("*.yaml"))
TOY = ROOT / "configs" / "hybrid" / "toy_hybrid.yaml"


def print_config(capsys, *configs, extra=()):
    args = ["fit"] + [a for c in configs for a in ("--config", str(c))] + list(extra) + ["--print_config"]
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


@pytest.mark.parametrize("config", MODEL_CONFIGS, ids=lambda p: p.stem)
def test_print_config_resolves(capsys, config):
    code, out, err = print_config(capsys, config)
    assert code in (0, None), err
    resolved = yaml.safe_load(out)
    declared = yaml.safe_load(config.read_text())
    assert resolved["model"]["init_args"]["model"]["pattern"] == declared["model"]["init_args"]["model"]["pattern"]


@pytest.mark.parametrize("overlay", OVERLAYS, ids=lambda p: p.stem)
def test_scale_overlays_change_only_the_trainer(capsys, overlay):
    assert set(yaml.safe_load(overlay.read_text())) == {"trainer"}
    code, out, err = print_config(capsys, TOY, overlay)
    assert code in (0, None), err
    base = yaml.safe_load(print_config(capsys, TOY)[1])
    resolved = yaml.safe_load(out)
    assert resolved["model"] == base["model"] and resolved["data"] == base["data"]
    for key, value in yaml.safe_load(overlay.read_text())["trainer"].items():
        if key == "callbacks":  # jsonargparse fills in the callbacks' defaults: compare what was given
            assert [c["class_path"] for c in resolved["trainer"][key]] == [c["class_path"] for c in value]
            for got, given in zip(resolved["trainer"][key], value):
                for name, arg in given.get("init_args", {}).items():
                    assert arg.items() <= got["init_args"][name].items() if isinstance(arg, dict) else arg == got["init_args"][name]
        else:
            assert resolved["trainer"][key] == value


def test_unknown_config_key_is_named(capsys, tmp_path):
    cfg = yaml.safe_load(TOY.read_text())
    cfg["model"]["init_args"]["model"]["patern"] = cfg["model"]["init_args"]["model"].pop("pattern")
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(cfg))
    code, _, err = print_config(capsys, bad)
    assert code not in (0, None)
    assert "patern" in err


@pytest.mark.parametrize("edit,message", [
    (lambda m: m.update(pattern="M-Q"), "model.init_args.model.pattern: unknown layer character(s) ['Q']"),
    (lambda m: m.update(d_modle=64), "model.init_args.model.d_modle: unknown config key"),
    (lambda m: m["attention"].update(n_kv_heads=3), "attention.n_kv_heads: must divide n_heads=4"),
])
def test_bad_model_config_gets_one_clear_line(capsys, tmp_path, edit, message):
    cfg = yaml.safe_load(TOY.read_text())
    edit(cfg["model"]["init_args"]["model"])
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(cfg))
    assert main(["fit", "--config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_unknown_subcommand(capsys):
    assert main(["trian"]) == 2
    assert "unknown command 'trian'" in capsys.readouterr().err


def test_python_dash_m_nvrepro_is_the_nvrepro_command(tmp_path):
    """``python -m nvrepro`` runs the same entry point, from the shell, in a fresh interpreter."""
    import subprocess
    import sys

    run = subprocess.run([sys.executable, "-m", "nvrepro", "fit", "--config", str(TOY), "--print_config"],
                         capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert run.returncode == 0, run.stderr
    assert yaml.safe_load(run.stdout)["model"]["init_args"]["model"]["pattern"] == \
        yaml.safe_load(TOY.read_text())["model"]["init_args"]["model"]["pattern"]
    bad = subprocess.run([sys.executable, "-m", "nvrepro", "no-such-command"], capture_output=True, text=True,
                         cwd=tmp_path, timeout=300)
    assert bad.returncode == 2 and "unknown command 'no-such-command'" in bad.stderr
