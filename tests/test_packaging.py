"""The environment files agree, and CI runs the README's test command."""

import pathlib
import re
import tomllib

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[1]


def name_of(requirement: str) -> str:
    return re.split(r"[\[<>=!~ ;]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def test_environment_yml_lists_the_same_packages_as_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {name_of(r) for r in project["dependencies"] + project["optional-dependencies"]["dev"]}
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    listed = {name_of(r) for r in pip_section if not r.startswith("-e")}
    assert listed == wanted, {"only in environment.yml": listed - wanted, "only in pyproject": wanted - listed}


def test_pyproject_admits_the_cpu_torch_and_has_no_gpu_only_hard_dependency():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    torch_req = next(r for r in project["dependencies"] if name_of(r) == "torch")
    assert "==" not in torch_req and "<" not in torch_req
    gpu_only = {"mamba-ssm", "causal-conv1d", "flash-attn", "transformer-engine"}
    assert not gpu_only & {name_of(r) for r in project["dependencies"]}
    assert gpu_only == {name_of(r) for r in project["optional-dependencies"]["gpu"]}


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in readme and re.search(r"^make test$", ci, re.M)
    makefile = (ROOT / "Makefile").read_text()
    assert "pip install torch==2.13.0" in makefile  # before the project, so no CUDA build is pulled
    assert makefile.index("torch==2.13.0") < makefile.index('-e ".[dev]"')
