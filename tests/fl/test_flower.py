"""DP-FedAvg on Flower: the simulation engine (Ray) against a hand-computed replay, and one round
through the deployment engine (SuperLink + two SuperNodes as subprocesses)."""

import json
import math
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from flwr.app import ArrayRecord

from nvrepro.core.tooling.validation import ConfigError
from nvrepro.fl.client import train_user
from nvrepro.fl.server import DPFedAvgSettings, make_evaluate_fn, train_config
from nvrepro.fl.simulation import run_dp_fedavg
from nvrepro.fl.task import build_lm

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
TINY = dict(num_users=4, clients_per_round=2, local_steps=2, seed=3, sentences_per_user=32, eval_users=2)


def _replay(settings: DPFedAvgSettings, users_per_round: list[list[int]]) -> list[float]:
    """The paper's round by hand, no Flower: w <- w + eta (sum_i clip(delta_i, C) + N(0, (zC)^2)) / m,
    the client updates from ``train_user`` and the noise from the stream DPFedAvg uses."""
    s = settings
    w = {k: v.detach().double() for k, v in build_lm(s.model_config, s.seed).state_dict().items()}
    evaluate, config = make_evaluate_fn(s), train_config(s)
    as_record = lambda params: ArrayRecord({k: v.float() for k, v in params.items()})  # noqa: E731
    losses = [float(evaluate(0, as_record(w))["eval-loss"])]
    for r, users in enumerate(users_per_round, start=1):
        config["server-round"] = r
        total = {k: torch.zeros_like(v) for k, v in w.items()}
        for u in users:
            new = train_user(as_record(w), config, u)[0].to_torch_state_dict()
            delta = {k: new[k].double() - w[k] for k in w}
            norm = math.sqrt(sum(float((d ** 2).sum()) for d in delta.values()))
            for k in w:
                total[k] += delta[k] * min(1.0, s.clip_norm / norm)
        rng = np.random.default_rng([s.seed, r, 7])
        for k in w:
            noise = torch.from_numpy(rng.normal(0.0, s.noise_multiplier * s.clip_norm, tuple(w[k].shape)))
            w[k] = (w[k] + s.server_lr * (total[k] + noise) / s.clients_per_round).float().double()
        losses.append(float(evaluate(r, as_record(w))["eval-loss"]))
    return losses


@pytest.fixture(scope="module")
def dp_run():
    """Clipping active (C far below the update norms), noise on, server lr != 1."""
    kwargs = dict(TINY, rounds=2, clip_norm=0.05, noise_multiplier=0.5, server_lr=0.8)
    return kwargs, run_dp_fedavg(**kwargs)


def test_simulation_runs_and_eval_loss_is_finite(dp_run):
    _, rounds = dp_run
    assert [r["round"] for r in rounds] == [0, 1, 2]
    assert all(math.isfinite(r["eval_loss"]) for r in rounds)
    assert all(r["client_updates_per_second"] > 0 and len(r["users"]) == 2 for r in rounds[1:])


def test_every_contribution_is_clipped_to_c_and_noise_is_zc_over_m(dp_run):
    kwargs, rounds = dp_run
    for r in rounds[1:]:
        assert len(r["contribution_norms"]) == 2
        # clipping was active, and no clipped update exceeds C (float32 rounding aside)
        assert all(kwargs["clip_norm"] * 0.999 < n <= kwargs["clip_norm"] * (1 + 1e-5) for n in r["contribution_norms"])
        assert r["noise_std"] == pytest.approx(kwargs["noise_multiplier"] * kwargs["clip_norm"] / 2)


def test_simulation_equals_the_papers_mechanism_by_hand(dp_run):
    """Sampling, client updates, clipping, noise and server lr are all reproducible: a replay
    without Flower gives the same eval losses (so the same seed gives the same metrics)."""
    kwargs, rounds = dp_run
    users = [r["users"] for r in rounds[1:]]
    for r, us in enumerate(users, start=1):  # the server's seeded sampler
        assert us == sorted(np.random.default_rng([kwargs["seed"], r]).choice(4, 2, replace=False).tolist())
    s = DPFedAvgSettings(**kwargs)
    assert _replay(s, users) == pytest.approx([r["eval_loss"] for r in rounds], abs=2e-5)


def test_poisson_sampling_divides_by_the_expected_count():
    """Poisson sampling: each user joins with probability m / N; the clipped sum is divided by m
    (not by the number who joined), also when that number differs from m."""
    kwargs = dict(TINY, num_users=6, clients_per_round=3, rounds=3, clip_norm=0.05, noise_multiplier=0.5,
                  sampling="poisson")
    rounds = run_dp_fedavg(**kwargs)
    users = [r["users"] for r in rounds[1:]]
    for r, us in enumerate(users, start=1):
        keep = np.random.default_rng([kwargs["seed"], r]).random(6) < 0.5
        assert us == [u for u in range(6) if keep[u]]
    assert {len(u) for u in users} != {3}, "pick a seed where some round trains other than m users"
    assert _replay(DPFedAvgSettings(**kwargs), users) == pytest.approx([r["eval_loss"] for r in rounds], abs=2e-5)


def test_no_noise_and_large_c_is_fedavg():
    """z = 0, C huge: one round is the plain mean of the clients' trained weights."""
    kwargs = dict(TINY, rounds=1, clip_norm=1e6, noise_multiplier=0.0)
    rounds = run_dp_fedavg(**kwargs)
    s = DPFedAvgSettings(**kwargs)
    start = ArrayRecord(build_lm(s.model_config, s.seed).state_dict())
    config = train_config(s)
    config["server-round"] = 1
    models = [train_user(start, config, u)[0].to_torch_state_dict() for u in rounds[1]["users"]]
    fedavg = ArrayRecord({k: sum(m[k] for m in models) / len(models) for k in models[0]})
    assert rounds[1]["noise_std"] == 0.0
    assert rounds[1]["eval_loss"] == pytest.approx(float(make_evaluate_fn(s)(1, fedavg)["eval-loss"]), abs=1e-5)
    assert rounds[1]["eval_loss"] < rounds[0]["eval_loss"]


def test_settings_errors_name_the_field():
    with pytest.raises(ConfigError, match="clients_per_round"):
        DPFedAvgSettings(num_users=2, clients_per_round=3)
    with pytest.raises(ConfigError, match="sampling"):
        DPFedAvgSettings(sampling="uniform")
    with pytest.raises(ConfigError, match="model_config.pattern"):
        DPFedAvgSettings(model_config={"pattern": "?"})
    s = DPFedAvgSettings(clip_norm=0.3, model_config={"pattern": "*-", "d_model": 16, "vocab_size": 260,
                                                     "max_seq_len": 32, "attention": {"head_dim": 4}})
    assert DPFedAvgSettings.from_run_config(s.to_run_config()).to_run_config() == s.to_run_config()


# ---------------------------------------------------------------------------------------------
# Deployment engine: flower-superlink + two flower-supernode processes on loopback, `flwr run`.

APP_TOML = """\
[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[project]
name = "nvrepro-fl-test"
version = "1.0.0"
dependencies = []

[tool.flwr.app]
publisher = "nvrepro"

[tool.flwr.app.components]
serverapp = "nvrepro.fl.server:app"
clientapp = "nvrepro.fl.client:app"

[tool.flwr.app.config]
num-users = 2
clients-per-round = 2
rounds = 1
eval-users = 1
sentences-per-user = 16
noise-multiplier = 0.5
metrics-path = "{metrics}"
"""


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def _wait_for_port(port: int, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "flower-superlink exited early"
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.3)
    raise TimeoutError(f"nothing listens on port {port}")


def _stop(procs: list[subprocess.Popen]) -> None:
    """SIGTERM, then SIGKILL, each started process's own group (its SuperExec and app children too)."""
    for p in procs:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait(timeout=15)
    time.sleep(0.5)
    for p in procs:  # children that outlived their parent (same group)
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_one_round_through_the_deployment_engine(tmp_path):
    link, node0, node1 = _free_ports(3)
    app_dir, home = tmp_path / "app", tmp_path / "flwr_home"
    app_dir.mkdir()
    home.mkdir()
    metrics = tmp_path / "metrics.json"
    (app_dir / "pyproject.toml").write_text(APP_TOML.format(metrics=metrics))
    (home / "config.toml").write_text(f'[superlink]\ndefault = "local-test"\n\n[superlink.local-test]\n'
                                      f'address = "127.0.0.1:{link}"\ninsecure = true\n')
    env = dict(os.environ, PYTHONPATH=str(REPO), FLWR_HOME=str(home),
               PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")  # SuperLink starts flower-superexec by name
    popen = dict(env=env, cwd=tmp_path, start_new_session=True, stdout=subprocess.DEVNULL,
                 stderr=subprocess.STDOUT)
    procs: list[subprocess.Popen] = []
    try:
        procs.append(subprocess.Popen([str(BIN / "flower-superlink"), "--insecure", "--host", "127.0.0.1",
                                       "--port", str(link), "--database", str(tmp_path / "link.db")], **popen))
        _wait_for_port(link, procs[0])
        for i, port in enumerate((node0, node1)):
            procs.append(subprocess.Popen([str(BIN / "flower-supernode"), "--insecure", "--superlink",
                                           f"127.0.0.1:{link}", "--host", "127.0.0.1", "--port", str(port),
                                           "--node-config", f"partition-id={i} num-partitions=2"], **popen))
        run = subprocess.run([str(BIN / "flwr"), "run", str(app_dir), "local-test", "--stream"], env=env,
                             cwd=tmp_path, capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
        rounds = json.loads(metrics.read_text())["rounds"]
        assert [r["round"] for r in rounds] == [0, 1]
        assert sorted(rounds[1]["users"]) == [0, 1]
        assert all(math.isfinite(r["eval_loss"]) for r in rounds)
        assert all(n <= 1.0 + 1e-5 for n in rounds[1]["contribution_norms"])
    finally:
        _stop(procs)
