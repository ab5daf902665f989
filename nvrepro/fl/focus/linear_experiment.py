"""Notebook 03 (``notebooks/fl/03_focus_faa.ipynb``): FAA, FOCUS and its baselines on the linear task,
where every agent's excess loss is exact (:mod:`nvrepro.fl.focus.linear`).

Three experiments in one Flower simulation (all runs have the same agents count):

* ``methods``: FOCUS (K = the task's groups), IFCA (same K), FedAvg and q-FFL, each over several seeds;
  :data:`LINEAR` checks the paper's linear-model result: FOCUS's FAA is below FedAvg's, and its benign
  agents' excess loss is no higher;
* ``sweep_k``: FOCUS with K = 1 .. ``max_k`` (K = 1 is FedAvg); :data:`SWEEP_K` checks that K = the
  number of groups is fairer than K = 1;
* ``sweep_noisy``: FOCUS and FedAvg as the number of noisy agents grows; :data:`SWEEP_NOISY` checks
  that FOCUS's FAA stays below FedAvg's at every count.
"""

from __future__ import annotations

from typing import Any, Mapping

from nvrepro.core.tooling.claims import Claim, Judgement, all_parts, at_least_threshold, not_applicable
from nvrepro.core.tooling.intervals import paired_gain
from nvrepro.core.tooling.profiles import profile_settings
from nvrepro.fl.focus.compare import collect, judge_fairer, method_runs, summary_table
from nvrepro.fl.focus.registry import make_task

# ``task``: LinearTask fields (the seed varies); ``settings``: FocusSettings shared by every run;
# ``seeds``: repetitions (each a new draw of data and initial models); ``max_k``: the K sweep's top;
# ``noisy_counts``: the noisy-agents sweep (same seeds).
PROFILES = {
    "smoke": dict(task=dict(num_agents=6, noisy_agents=2, clusters=2, dim=4, samples=20),
                  settings=dict(rounds=3, eval_every=1), seeds=[0, 1], max_k=3, noisy_counts=[0, 2]),
    "paper": dict(task=dict(num_agents=20, noisy_agents=4, clusters=2, dim=8, samples=40),
                  settings=dict(rounds=30, eval_every=2), seeds=[0, 1, 2, 3, 4], max_k=5,
                  noisy_counts=[0, 2, 4, 6, 8]),
}


def plan(profile: str) -> dict:
    """The settings of ``profile`` (:data:`PROFILES`); a clear error for an unknown one."""
    return profile_settings(PROFILES, profile)


def _task(p: dict, seed: int, **overrides: Any):
    return make_task("linear", **{**p["task"], **overrides, "seed": seed})


def runs(profile: str, seed: int = 0) -> list:
    """Every run of the notebook: ``methods/...``, ``k<K>/focus/<seed>``, ``noisy<n>/<method>/<seed>``.
    ``seed`` offsets every repetition's seed."""
    from nvrepro.fl.focus.runner import FocusRun, FocusSettings

    p = plan(profile)
    seeds = [seed + s for s in p["seeds"]]
    out = method_runs("methods", lambda s: _task(p, s), seeds, p["settings"])
    for k in range(1, p["max_k"] + 1):
        if k == _task(p, seed).num_groups:
            continue  # the same runs as "methods/focus/..."
        for s in seeds:
            out.append(FocusRun(f"k{k}/focus/{s}", _task(p, s), FocusSettings(method="focus", num_clusters=k, seed=s,
                                                                              **p["settings"])))
    for n in p["noisy_counts"]:
        if n == p["task"]["noisy_agents"]:
            continue  # the same runs as "methods/..."
        out += method_runs(f"noisy{n}", lambda s, n=n: _task(p, s, noisy_agents=n), seeds, p["settings"],
                           methods=("focus", "fedavg"))
    return out


def run(profile: str = "smoke", seed: int = 0) -> dict:
    """Run the notebook's experiments in one Flower simulation; plain-data results."""
    from nvrepro.fl.focus.runner import run_focus

    p = plan(profile)
    seeds = [seed + s for s in p["seeds"]]
    results = run_focus(runs(profile, seed))
    task0 = _task(p, seeds[0])
    groups = task0.num_groups
    methods = collect(results, "methods", seeds)
    sweep_k = {}
    for k in range(1, p["max_k"] + 1):
        if k == groups:
            sweep_k[k] = {"faa": methods["focus"]["faa"], "benign_excess": methods["focus"]["benign_excess"]}
        else:
            c = collect(results, f"k{k}", seeds, methods=("focus",))["focus"]
            sweep_k[k] = {"faa": c["faa"], "benign_excess": c["benign_excess"]}
    sweep_noisy = {}
    for n in p["noisy_counts"]:
        if n == p["task"]["noisy_agents"]:
            sweep_noisy[n] = {m: {"faa": methods[m]["faa"], "benign_excess": methods[m]["benign_excess"]}
                              for m in ("focus", "fedavg")}
        else:
            c = collect(results, f"noisy{n}", seeds, methods=("focus", "fedavg"))
            sweep_noisy[n] = {m: {"faa": c[m]["faa"], "benign_excess": c[m]["benign_excess"]} for m in c}
    return {"methods": methods, "sweep_k": sweep_k, "sweep_noisy": sweep_noisy, "groups": groups,
            "group_names": task0.group_names, "seeds": seeds, "plan": p,
            "profile": profile, "seed": seed,
            "pooled_least_squares_excess": [
                float(((task0.pooled_least_squares() - task0.true_weights(a)) ** 2).sum())
                for a in range(task0.num_agents)]}


def judge_linear(metrics: Mapping[str, Any]) -> Judgement:
    return judge_fairer(metrics["methods"], utility="benign_excess", margin=0.0, higher_is_better=False)


LINEAR = Claim(
    "fl_focus_linear",
    "On the linear task (two clusters of agents and noisy agents, exact excess losses), FOCUS has a lower FAA "
    "than FedAvg and its benign agents' mean excess loss is no higher (the paper's linear-model result); "
    "paired bootstrap over seeds.",
    judge_linear)


def judge_sweep_k(metrics: Mapping[str, Any]) -> Judgement:
    sweep, groups = metrics["sweep_k"], metrics["groups"]
    keys = {int(k): v for k, v in sweep.items()}
    if groups not in keys or 1 not in keys:
        return not_applicable(f"the sweep lacks K = 1 or K = {groups}")
    gain = paired_gain(keys[groups]["faa"], keys[1]["faa"])
    if gain is None:
        return not_applicable("fewer than two seeds")
    return at_least_threshold(gain, 0.0, f"FAA, K = 1 minus K = {groups}")


SWEEP_K = Claim(
    "fl_focus_sweep_k",
    "FOCUS with as many clusters as the linear task has groups of agents has a lower FAA than with one cluster "
    "(which is FedAvg); paired bootstrap over seeds.",
    judge_sweep_k)


def judge_sweep_noisy(metrics: Mapping[str, Any]) -> Judgement:
    parts = {}
    for n, arms in metrics["sweep_noisy"].items():
        gain = paired_gain(arms["focus"]["faa"], arms["fedavg"]["faa"])
        if gain is None:
            return not_applicable("fewer than two seeds")
        parts[f"noisy {n}"] = at_least_threshold(gain, 0.0, f"FAA with {n} noisy agents, FedAvg - FOCUS")
    return all_parts(parts)


SWEEP_NOISY = Claim(
    "fl_focus_sweep_noisy",
    "On the linear task, FOCUS's FAA stays below FedAvg's at every number of noisy agents; paired bootstrap "
    "over seeds.",
    judge_sweep_noisy)


def summary_text(result: Mapping[str, Any]) -> str:
    return summary_table(result["methods"], accuracy=False)
