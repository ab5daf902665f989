"""Methods side by side over seeds: building the runs, collecting their results as plain data, and the
judge shared by every "FOCUS is fairer than FedAvg at similar utility" claim.

Each seed draws a new task (its data) and new initial models, so seeds are independent repetitions and
the claims pair the methods within a seed (paired bootstrap over seeds,
:func:`nvrepro.core.tooling.intervals.paired_gain`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Mapping

import numpy as np

from nvrepro.core.tooling.claims import Judgement, all_parts, at_least_threshold, not_applicable
from nvrepro.core.tooling.intervals import paired_gain
from nvrepro.fl.focus.runner import METHODS, FocusRun, FocusSettings
from nvrepro.fl.focus.tasks import FocusTask


def method_runs(prefix: str, make_task: Callable[[int], FocusTask], seeds: Sequence[int],
                settings: Mapping[str, Any], methods: Sequence[str] = METHODS,
                clusters: int | None = None) -> list[FocusRun]:
    """One run per method and seed, named ``"<prefix>/<method>/<seed>"``; FOCUS and IFCA get
    ``clusters`` cluster models (default: the task's number of groups), the others one."""
    runs = []
    for seed in seeds:
        task = make_task(seed)
        k = clusters or task.num_groups
        for method in methods:
            runs.append(FocusRun(f"{prefix}/{method}/{seed}", task,
                                 FocusSettings(method=method, num_clusters=k if method in ("focus", "ifca") else 1,
                                               seed=seed, **settings)))
    return runs


def collect(results: Mapping[str, Mapping[str, Any]], prefix: str, seeds: Sequence[int],
            methods: Sequence[str] = METHODS) -> dict[str, dict[str, Any]]:
    """Per method, lists over ``seeds``: ``faa``, ``benign_excess``, ``benign_accuracy`` (or ``None``),
    ``mean_test_loss``, ``seconds``, the FAA curve per seed (``curve_faa``, at ``curve_rounds``), and
    the first seed's final per-agent evaluation (``first``) and responsibilities."""
    out: dict[str, dict[str, Any]] = {}
    for method in methods:
        rs = [results[f"{prefix}/{method}/{s}"] for s in seeds]
        acc = [r["final"]["benign_accuracy"] for r in rs]
        out[method] = {
            "faa": [r["final"]["faa"] for r in rs],
            "benign_excess": [r["final"]["benign_excess"] for r in rs],
            "benign_accuracy": None if acc[0] is None else acc,
            "mean_test_loss": [r["final"]["mean_test_loss"] for r in rs],
            "seconds": [r["seconds"] for r in rs],
            "curve_rounds": [c["round"] for c in rs[0]["curve"]],
            "curve_faa": [[c["faa"] for c in r["curve"]] for r in rs],
            "num_clusters": rs[0]["settings"]["num_clusters"],
            "first": rs[0]["final"], "responsibilities": rs[0]["responsibilities"],
        }
    return out


def judge_fairer(methods: Mapping[str, Mapping[str, Any]], *, utility: str, margin: float,
                 higher_is_better: bool) -> Judgement:
    """FOCUS vs FedAvg, paired over seeds: ``faa`` (FedAvg's FAA minus FOCUS's, > 0) and ``utility``
    (FOCUS no worse than FedAvg by more than ``margin`` on the key ``utility``; ``higher_is_better``
    for accuracies, not for losses)."""
    focus, fedavg = methods["focus"], methods["fedavg"]
    gain = paired_gain(focus["faa"], fedavg["faa"])
    if gain is None:
        return not_applicable("fewer than two seeds")
    a, b = focus[utility], fedavg[utility]
    diff = paired_gain(b, a) if higher_is_better else paired_gain(a, b)  # FOCUS better > 0
    what = "accuracy" if higher_is_better else "loss"
    return all_parts({
        "faa": at_least_threshold(gain, 0.0, "FAA, FedAvg - FOCUS"),
        "utility": at_least_threshold(diff, -margin, f"{utility.replace('_', ' ')}, FOCUS vs FedAvg "
                                                     f"({'higher' if higher_is_better else 'lower'} is better; "
                                                     f"{what} margin {margin:g})")})


def summary_table(methods: Mapping[str, Mapping[str, Any]], *, accuracy: bool) -> str:
    """A text table: per method, K, FAA, benign excess loss, benign accuracy (if any), mean test loss
    and seconds, each the mean over seeds (FAA with its 95% interval)."""
    from nvrepro.core.tooling.figures import mean_error_bar
    from nvrepro.fl.focus.runner import METHOD_LABELS

    head = f"{'method':<8}{'K':>3}{'FAA':>22}{'benign excess':>15}" + (f"{'benign acc':>12}" if accuracy else "") \
        + f"{'test loss':>11}{'s/run':>7}"
    lines = [head]
    for name, m in methods.items():
        f, lo, hi = mean_error_bar(m["faa"])
        row = (f"{METHOD_LABELS[name]:<8}{m['num_clusters']:>3}{f'{f:.3f} [{f - lo:.3f}, {f + hi:.3f}]':>22}"
               f"{np.mean(m['benign_excess']):>15.3f}")
        if accuracy:
            row += f"{np.mean(m['benign_accuracy']):>12.3f}"
        lines.append(row + f"{np.mean(m['mean_test_loss']):>11.3f}{np.mean(m['seconds']):>7.1f}")
    return "\n".join(lines)
