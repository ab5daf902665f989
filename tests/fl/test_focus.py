"""FOCUS: FAA against closed forms, the E-step against a hand-computed softmax, the M-step against a
hand-weighted mean, the tasks' data and optima, and the Flower strategies (K = 1 is FedAvg; FedAvg
reaches the pooled least-squares solution; a FOCUS round equals a replay without Flower)."""

import itertools
import math

import numpy as np
import pytest
import torch

from nvrepro.core.tooling.validation import ConfigError
from nvrepro.fl.focus.client import train_agent
from nvrepro.fl.focus.em import check_clusters, e_step, hard_assign, m_step, prior_of, serve
from nvrepro.fl.focus.faa import excess_losses, faa, faa_of
from nvrepro.fl.focus.local import models_of, pack, unpack
from nvrepro.fl.focus.runner import FocusRun, FocusSettings, evaluate, initial_arrays, run_focus, train_config
from nvrepro.fl.focus.registry import make_task, task_from_json


# --- FAA ------------------------------------------------------------------------------------------

def test_faa_is_the_largest_pairwise_gap_of_excess_losses():
    rng = np.random.default_rng(0)
    losses, optimal = rng.random(7) + 1, rng.random(7)
    excess = [l - o for l, o in zip(losses, optimal)]
    brute = max(abs(a - b) for a, b in itertools.product(excess, excess))
    assert faa_of(losses, optimal) == pytest.approx(brute)
    assert faa([0.3]) == 0.0


def test_faa_errors():
    with pytest.raises(ValueError, match="equal-length"):
        excess_losses([1, 2], [1])
    with pytest.raises(ValueError, match="finite"):
        excess_losses([1, float("nan")], [0, 0])
    with pytest.raises(ValueError, match="non-empty"):
        faa([])


def test_linear_faa_is_exact_and_agrees_with_monte_carlo():
    """Served model theta: excess_i = ||theta - w_i||^2 exactly; a large-sample estimate of
    E(x.theta - y)^2 - s_i^2 from fresh draws of the same distribution agrees."""
    task = make_task("linear", num_agents=6, noisy_agents=2, clusters=2, dim=4)
    model = task.build_model(5)
    theta = task.weights_of(model)
    closed = [float(np.sum((theta - task.true_weights(a)) ** 2)) for a in range(6)]
    ex = excess_losses([task.test_loss(model, a) for a in range(6)], [task.optimal_loss(a) for a in range(6)])
    np.testing.assert_allclose(ex, closed, rtol=1e-9)
    rng = np.random.default_rng(1)
    mc = []
    for a in range(6):
        x = rng.normal(size=(200_000, 4))
        y = x @ task.true_weights(a) + task.label_std(a) * rng.normal(size=len(x))
        mc.append(np.mean((x @ theta - y) ** 2) - task.label_std(a) ** 2)
    np.testing.assert_allclose(mc, closed, rtol=0.03, atol=0.03)
    assert faa(ex) == pytest.approx(max(closed) - min(closed))


# --- E-step, M-step --------------------------------------------------------------------------------

def test_e_step_is_the_softmax_by_hand():
    losses = [[3.0, 1.0, 2.0], [0.5, 4.0, 0.5]]
    prior = [0.2, 0.5, 0.3]
    t = 2.0
    r = e_step(np.array(losses), np.log(prior), temperature=t)
    for i, row in enumerate(losses):
        num = [p * math.exp(-l / t) for p, l in zip(prior, row)]
        np.testing.assert_allclose(r[i], [v / sum(num) for v in num], rtol=1e-12)
    # huge summed losses stay finite (stable softmax) and put everything on the lowest one
    np.testing.assert_allclose(e_step(np.array([1000.0, 2000.0]), np.log([0.5, 0.5])), [1.0, 0.0])


def test_hard_assignment_prior_and_serving():
    losses = np.array([[3.0, 1.0], [0.2, 0.9], [5.0, 5.0]])
    np.testing.assert_array_equal(hard_assign(losses), [[0, 1], [1, 0], [1, 0]])
    np.testing.assert_allclose(prior_of(np.array([[1.0, 0.0], [0.5, 0.5]])), [0.75, 0.25])
    np.testing.assert_array_equal(serve(losses), [1, 0, 0])
    np.testing.assert_array_equal(serve(losses, np.log([0.01, 0.99])), [1, 1, 1])


def test_m_step_is_the_weighted_mean_per_cluster():
    rng = np.random.default_rng(0)
    arrays = [[[rng.normal(size=3)], [rng.normal(size=3)]] for _ in range(3)]  # agent -> cluster -> arrays
    current = [[np.zeros(3)], [np.ones(3)]]
    w = np.array([[1.0, 0.0], [3.0, 0.0], [0.0, 0.0]])
    new = m_step(arrays, w, current)
    np.testing.assert_allclose(new[0][0], (1 * arrays[0][0][0] + 3 * arrays[1][0][0]) / 4)
    np.testing.assert_allclose(new[1][0], np.ones(3))  # nobody trained cluster 1: kept


def test_cluster_count_errors_name_the_field():
    with pytest.raises(ConfigError, match="num_clusters"):
        check_clusters(0)
    with pytest.raises(ConfigError, match="num_clusters.*5 clusters for 4 agents"):
        check_clusters(5, 4)
    with pytest.raises(ConfigError, match="num_clusters"):
        FocusSettings(method="focus", num_clusters=0)
    with pytest.raises(ConfigError, match="num_clusters"):
        FocusSettings(method="fedavg", num_clusters=2)
    with pytest.raises(ConfigError, match="method"):
        FocusSettings(method="fedprox")
    task = make_task("linear", num_agents=3, noisy_agents=0, clusters=1)
    with pytest.raises(ConfigError, match="num_clusters"):
        run_focus([FocusRun("too_many", task, FocusSettings(num_clusters=4))])


# --- tasks ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["linear", "digits", "text"])
def test_tasks_are_deterministic_and_travel_as_json(name):
    task = make_task(name, num_agents=6, noisy_agents=2, seed=4)
    assert task_from_json(task.to_json()) == task
    x0, y0 = task.data(1)
    x1, y1 = task_from_json(task.to_json())._make_data(1, "train")
    assert torch.equal(x0, x1) and torch.equal(y0, y1)
    assert not torch.equal(task.data(0, "train")[1][:20], task.data(2, "train")[1][:20])
    assert [task.group(a) for a in range(6)] == [0, 1, 0, 1, 2, 2]
    model = task.build_model(0)
    assert torch.isfinite(task.loss(model, x0, y0))


def test_task_errors_name_the_field():
    with pytest.raises(ConfigError, match="noisy_agents"):
        make_task("linear", num_agents=4, noisy_agents=4)
    with pytest.raises(ConfigError, match="wobble"):
        make_task("linear", wobble=1)
    with pytest.raises(ConfigError, match="task"):
        make_task("speech")
    with pytest.raises(ConfigError, match="label_noise"):
        make_task("digits", label_noise=1.5)


def test_digits_shards_are_disjoint_and_noise_flips_labels():
    task = make_task("digits", num_agents=10, noisy_agents=2, label_noise=1.0)
    seen = set()
    for a in range(10):
        for split in ("train", "test"):
            x, _ = task.data(a, split)
            rows = {tuple(r.tolist()) for r in x}
            seen_before = len(seen)
            seen |= rows
            assert len(seen) >= seen_before + len(rows) - 5  # a few duplicate images exist in the dataset
    clean = make_task("digits", num_agents=10, noisy_agents=2, label_noise=0.0)
    _, y_noisy = task.data(9)
    _, y_clean = clean.data(9)
    assert (y_noisy != y_clean).float().mean() > 0.8  # uniform relabelling keeps ~10%


def test_text_corruption_share_and_bigram_optimum_is_the_mle():
    task = make_task("text", num_agents=4, noisy_agents=1, chars=4000, corruption=0.5)
    uncorrupted = make_task("text", num_agents=4, noisy_agents=1, chars=4000, corruption=0.0)
    a, b = task._text(3, "train"), uncorrupted._text(3, "train")
    changed = np.mean(np.frombuffer(a, np.uint8) != np.frombuffer(b, np.uint8))
    assert 0.4 < changed < 0.55  # half replaced, a few by the same character
    # the closed-form bigram (counts) fits the pooled data at least as well as gradient descent does
    clean = make_task("text", num_agents=4, noisy_agents=0, chars=4000)
    x, y = clean.data(0)
    mle = clean.fit_optimum(x, y, smoothing=1e-6)
    sgd = clean.build_model(0)
    opt = torch.optim.Adam(sgd.parameters(), lr=0.1)
    for _ in range(300):
        opt.zero_grad()
        clean.loss(sgd, x, y).backward()
        opt.step()
    with torch.no_grad():
        assert float(clean.loss(mle, x, y)) <= float(clean.loss(sgd, x, y)) + 1e-3


def test_optimal_losses_sit_below_a_model_for_everyone():
    """An agent's own optimum (fitted to its group) is at most the loss of one model fitted to all
    agents' pooled data, for the benign agents of every task (both estimated on their test data)."""
    for name in ("digits", "text"):
        task = make_task(name, num_agents=6, noisy_agents=2)
        xs, ys = zip(*(task.data(a) for a in range(6)))
        pooled = task.fit_optimum(torch.cat(xs), torch.cat(ys))
        for a in range(4):
            assert task.optimal_loss(a) <= task.test_loss(pooled, a) + 0.05, (name, a)


# --- client and strategies -------------------------------------------------------------------------

def test_client_soft_e_step_and_untrained_clusters():
    task = make_task("linear", num_agents=4, noisy_agents=1, clusters=2)
    run = FocusRun("x", task, FocusSettings(method="focus", num_clusters=3, seed=1))
    config = train_config(run)
    config["server-round"] = 1
    config["log-prior"] = list(np.log([0.2, 0.3, 0.5]))
    config["temperature"] = 50.0
    config["min-responsibility"] = 0.3
    arrays = initial_arrays(run)
    out, metrics = train_agent(arrays, config, agent=2)
    x, y = task.data(2)
    models = models_of(task, arrays)
    summed = [float(((m(x).squeeze(-1) - y) ** 2).sum()) for m in models]
    r = e_step(np.array(summed), np.log([0.2, 0.3, 0.5]), 50.0)
    np.testing.assert_allclose(metrics["responsibilities"], r, rtol=1e-5)
    assert metrics["trained"] == [int(v >= 0.3) for v in r]
    before, after = unpack(arrays), unpack(out)
    for k, trained in enumerate(metrics["trained"]):
        assert torch.equal(before[k]["weight"], after[k]["weight"]) == (not trained)


@pytest.fixture(scope="module")
def linear_runs():
    task = make_task("linear", num_agents=4, noisy_agents=1, clusters=2, dim=3, samples=30)
    full = dict(local_steps=1, batch_size=0, lr=0.2, seed=2)
    runs = [FocusRun("focus_k1", task, FocusSettings(method="focus", num_clusters=1, rounds=3, **full)),
            FocusRun("fedavg", task, FocusSettings(method="fedavg", rounds=3, **full)),
            FocusRun("fedavg_long", task, FocusSettings(method="fedavg", rounds=60, eval_every=60, **full)),
            FocusRun("focus_k2", task, FocusSettings(method="focus", num_clusters=2, rounds=2, temperature=20.0,
                                                     local_steps=2, lr=0.1, seed=5)),
            FocusRun("qffl_q0", task, FocusSettings(method="qffl", q=0.0, rounds=2, **full))]
    return task, runs, run_focus(runs)


def test_focus_with_one_cluster_is_fedavg(linear_runs):
    task, _, res = linear_runs
    a, b = res["focus_k1"], res["fedavg"]
    assert [c["faa"] for c in a["curve"]] == pytest.approx([c["faa"] for c in b["curve"]], rel=1e-6)
    assert a["final"]["test_loss"] == pytest.approx(b["final"]["test_loss"], rel=1e-6)


def test_fedavg_reaches_pooled_least_squares(linear_runs):
    """One full-batch gradient step a round: FedAvg (weighted by n_i) is gradient descent on the pooled
    squared loss, so it converges to the least-squares solution over all agents' data."""
    task, _, res = linear_runs
    theta_star = task.pooled_least_squares()
    expected = [float(np.sum((theta_star - task.true_weights(a)) ** 2)) for a in range(task.num_agents)]
    np.testing.assert_allclose(res["fedavg_long"]["final"]["excess"], expected, rtol=1e-3, atol=1e-4)


def test_focus_round_equals_a_replay_without_flower(linear_runs):
    task, runs, res = linear_runs
    run = runs[3]
    arrays = initial_arrays(run)
    prior = np.full(2, 0.5)
    for rnd in (1, 2):
        config = train_config(run)
        config.update({"server-round": rnd, "log-prior": list(np.log(prior)), "temperature": 20.0,
                       "min-responsibility": 1e-3})
        replies = [train_agent(arrays, config, a) for a in range(task.num_agents)]
        r = np.array([m["responsibilities"] for _, m in replies])
        w = r * np.array([m["trained"] for _, m in replies]) * 30
        states = [unpack(out) for out, _ in replies]
        current = unpack(arrays)
        new = []
        for k in range(2):
            if w[:, k].sum() == 0:
                new.append(current[k])
            else:
                new.append({"weight": sum(w[i, k] * states[i][k]["weight"].double() for i in range(4)).float()
                            / float(w[:, k].sum())})
        arrays, prior = pack(new), np.maximum(r.mean(0), 1e-6) / np.maximum(r.mean(0), 1e-6).sum()
    expected = evaluate(task, arrays, np.log(prior))
    np.testing.assert_allclose(res["focus_k2"]["final"]["test_loss"], expected["test_loss"], rtol=1e-5)
    np.testing.assert_allclose(res["focus_k2"]["responsibilities"], r, rtol=1e-5, atol=1e-9)


def test_qffl_with_q_zero_moves_like_fedavg_with_equal_weights(linear_runs):
    """Flower's q-FedAvg at q = 0 is a FedAvg step with equal client weights (Li et al. 2020): one
    round from the same start equals the unweighted mean of the clients' models (equal n here)."""
    task, runs, res = linear_runs
    run = runs[4]
    arrays = initial_arrays(run)
    for rnd in (1, 2):
        config = train_config(run)
        config["server-round"] = rnd
        outs = [unpack(train_agent(arrays, config, a)[0])[0]["weight"].double() for a in range(4)]
        arrays = pack([{"weight": (sum(outs) / 4).float()}])
    np.testing.assert_allclose(res["qffl_q0"]["final"]["test_loss"],
                               evaluate(task, arrays)["test_loss"], rtol=1e-5)
