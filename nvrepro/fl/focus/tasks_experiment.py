"""Notebook 04 (``notebooks/fl/04_focus_tasks.ipynb``): FOCUS against FedAvg, q-FFL and IFCA on images
(:mod:`nvrepro.fl.focus.digits`: upright and rotated digits, label-noise agents) and text
(:mod:`nvrepro.fl.focus.text`: two writing styles, corrupted-text agents), over several seeds, in one
Flower simulation.

:data:`DIGITS` and :data:`TEXT` check the paper's empirical claim on each task: FOCUS has a lower FAA
than FedAvg while its benign agents' accuracy is similar or better (at most :data:`ACCURACY_MARGIN`
lower), both paired over seeds. FAA here uses estimated optima (:meth:`FocusTask.optimal_loss`).
"""

from __future__ import annotations

from typing import Any, Mapping

from nvrepro.core.tooling.claims import Claim, Judgement
from nvrepro.core.tooling.profiles import profile_settings
from nvrepro.fl.focus.compare import collect, judge_fairer, method_runs, summary_table
from nvrepro.fl.focus.registry import make_task

ACCURACY_MARGIN = 0.02  # "similar": benign accuracy at most two points lower

TASK_NAMES = ("digits", "text")

# Per task: its fields (the seed varies) and the FocusSettings of every run; ``seeds``: repetitions.
PROFILES = {
    "smoke": dict(digits=dict(task=dict(num_agents=6, noisy_agents=2), settings=dict(rounds=2)),
                  text=dict(task=dict(num_agents=6, noisy_agents=2, chars=400), settings=dict(rounds=2)),
                  seeds=[0, 1]),
    "paper": dict(digits=dict(task=dict(num_agents=20, noisy_agents=4), settings=dict(rounds=30, eval_every=2)),
                  text=dict(task=dict(num_agents=20, noisy_agents=4, chars=3000),
                            settings=dict(rounds=30, eval_every=2)),
                  seeds=[0, 1, 2, 3, 4]),
}


def plan(profile: str) -> dict:
    """The settings of ``profile`` (:data:`PROFILES`); a clear error for an unknown one."""
    return profile_settings(PROFILES, profile)


def run(profile: str = "smoke", seed: int = 0) -> dict:
    """Both tasks, every method and seed, in one Flower simulation; ``{task name: {"methods": ...,
    "group_names": ...}}`` plus the plan."""
    from nvrepro.fl.focus.runner import run_focus

    p = plan(profile)
    seeds = [seed + s for s in p["seeds"]]
    makers = {name: (lambda s, name=name: make_task(name, **{**p[name]["task"], "seed": s})) for name in TASK_NAMES}
    runs = [r for name in TASK_NAMES for r in method_runs(name, makers[name], seeds, p[name]["settings"])]
    results = run_focus(runs)
    out: dict[str, Any] = {"plan": p, "profile": profile, "seed": seed, "seeds": seeds}
    for name in TASK_NAMES:
        task = makers[name](seeds[0])
        out[name] = {"methods": collect(results, name, seeds), "group_names": task.group_names,
                     "num_groups": task.num_groups}
    return out


def _judge(name: str):
    def judge(metrics: Mapping[str, Any]) -> Judgement:
        return judge_fairer(metrics[name]["methods"], utility="benign_accuracy", margin=ACCURACY_MARGIN,
                            higher_is_better=True)

    judge.__name__ = f"judge_{name}"
    return judge


DIGITS = Claim(
    "fl_focus_digits",
    "On digits (upright and rotated agents, label-noise agents), FOCUS has a lower FAA than FedAvg and its "
    "benign agents' accuracy is at most two points lower; paired bootstrap over seeds.",
    _judge("digits"))

TEXT = Claim(
    "fl_focus_text",
    "On next-byte prediction by agents of two writing styles (and corrupted-text agents), FOCUS has a lower FAA "
    "than FedAvg and its benign agents' accuracy is at most two points lower; paired bootstrap over seeds.",
    _judge("text"))


def summary_text(result: Mapping[str, Any]) -> str:
    return "\n\n".join(f"{name}:\n" + summary_table(result[name]["methods"], accuracy=True) for name in TASK_NAMES)
