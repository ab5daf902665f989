"""The environment files agree with one lock, and CI runs the README's test command."""

import pathlib
import re
import tomllib

import yaml
from packaging.requirements import Requirement

ROOT = pathlib.Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements.lock"


def name_of(requirement: str) -> str:
    return Requirement(requirement).name.lower().replace("_", "-")


def lock_pins() -> dict[str, list[Requirement]]:
    """``{name: [pinned requirement, ...]}`` (several where markers pick a version per platform)."""
    pins: dict[str, list[Requirement]] = {}
    for line in LOCK.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            req = Requirement(line)
            pins.setdefault(req.name.lower(), []).append(req)
    return pins


def project_requirements() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return [Requirement(r) for r in project["dependencies"] + project["optional-dependencies"]["dev"]]


def test_lock_pins_every_project_requirement_within_pyproject_ranges():
    pins = lock_pins()
    for req in project_requirements():
        locked = pins.get(req.name.lower())
        assert locked, f"requirements.lock has no pin for {req.name}; run `make lock`"
        for pin in locked:
            (spec,) = pin.specifier
            assert spec.operator == "==", f"requirements.lock: {pin} is not an exact pin"
            assert req.specifier.contains(spec.version, prereleases=True), (
                f"requirements.lock pins {pin}, outside pyproject's {req}; run `make lock`")


def test_lock_pins_the_torch_that_the_readme_installs():
    (torch,) = lock_pins()["torch"]
    assert str(torch.specifier) == "==2.13.0"


def test_environment_yml_installs_the_project_under_the_lock():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert "python=3.11" in env["dependencies"]
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert "-c requirements.lock" in pip_section
    assert "-e .[dev]" in pip_section
    (torch,) = lock_pins()["torch"]
    assert str(torch) in pip_section


def test_pyproject_admits_the_cpu_torch_and_has_no_gpu_only_hard_dependency():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    torch_req = next(Requirement(r) for r in project["dependencies"] if name_of(r) == "torch")
    assert torch_req.specifier.contains("2.13.0")
    assert "==" not in str(torch_req.specifier)  # ranges in pyproject, exact versions in the lock
    gpu_only = {"mamba-ssm", "causal-conv1d", "flash-attn", "transformer-engine"}
    assert not gpu_only & {name_of(r) for r in project["dependencies"]}
    assert gpu_only == {name_of(r) for r in project["optional-dependencies"]["gpu"]}


def test_requires_python_admits_what_the_code_imports():
    # tomllib (used by the tests and tooling) is in the standard library from Python 3.11 on.
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["requires-python"] == ">=3.11"


def test_ci_runs_the_readme_test_command_from_the_lock():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in readme and re.search(r"^make test$", ci, re.M)
    makefile = (ROOT / "Makefile").read_text()
    torch_line = "pip install -c $(LOCK) torch"
    project_line = 'pip install -c $(LOCK) -e ".[dev]"'
    # torch first, on its own, so that no other package's bare torch requirement pulls a CUDA build
    assert torch_line in makefile and project_line in makefile
    assert makefile.index(torch_line) < makefile.index(project_line)
    assert "LOCK := requirements.lock" in makefile
    assert "requirements.lock" in readme and "make lock" in readme
