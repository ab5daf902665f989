"""The experiment of ``notebooks/hybrid/01_mamba2_ssd.ipynb``: the SSD operator's three forms.

Profiles (:data:`PROFILES`), :func:`run` (= :func:`ssd_scaling`: time and activation memory of
the recurrent, quadratic and chunked forms against length, plain data), the summary the notebook
prints (:func:`scaling_summary`), the claim of the ``ssd_scaling`` figure (:data:`SSD_SCALING`)
and :func:`equivalence_check`. The plot is :func:`nvrepro.hybrid.figures.plot_ssd_scaling`.

The decay explorer (:func:`decay_layout`, :func:`show_decay`, :func:`decay_widget`) draws the
SSD's decay mask ``L`` for a constant per-step decay ``exp(dt A)`` with the chunked algorithm's
blocks outlined (:func:`chunk_blocks`) and how far back a token still matters
(:func:`influence_reach`); its plot is :func:`nvrepro.hybrid.figures.plot_decay_matrix`.
"""

from __future__ import annotations

import math
import statistics
import time
from typing import Callable, Mapping

import torch

from nvrepro.core.lm.layers.ssd import ssd_chunked, ssd_naive
from nvrepro.core.tooling.claims import Claim, Judgement
from nvrepro.core.tooling.profiles import profile_settings
from nvrepro.core.tooling.timing import num_threads
from nvrepro.hybrid.bench import ssd_inputs
from nvrepro.core.tooling.claims import all_parts, exact, faster
from nvrepro.core.tooling.validation import ConfigError, require_positive_int
from nvrepro.hybrid.mamba2_block import segsum_decay

# Per-profile grids. "naive" is the token-by-token recurrence (a Python loop: slow but linear
# memory); "quadratic" is the dual, attention-like form y = (L ∘ C Bᵀ)(Δx) over the whole
# sequence (ssd_chunked with a single chunk, chunk_size = l); "chunked" is the Mamba-2 algorithm.
PROFILES: dict[str, dict] = {
    "smoke": dict(lengths=[64, 128, 256], naive_max=256, quadratic_max=256, repeats=1),
    "paper": dict(lengths=[128, 256, 512, 1024, 2048, 4096, 8192], naive_max=4096,
                  quadratic_max=4096, repeats=3),
}
FORMS = ("naive", "quadratic", "chunked")


_inputs = ssd_inputs  # random x (b, l, h, p), dt (b, l, h) > 0, A (h,) < 0, B, C (b, l, g, n)


def _run(form: str, chunk_size: int) -> Callable:
    if form == "naive":
        return lambda x, dt, A, B, C: ssd_naive(x, dt, A, B, C)[0]
    if form == "quadratic":
        return lambda x, dt, A, B, C: ssd_chunked(x, dt, A, B, C, chunk_size=x.shape[1])[0]
    return lambda x, dt, A, B, C: ssd_chunked(x, dt, A, B, C, chunk_size=chunk_size)[0]


def saved_activation_bytes(fn: Callable, *args: torch.Tensor) -> int:
    """Bytes the autograd graph of ``fn(*args)`` keeps alive for the backward pass.

    Every tensor saved for backward passes through ``torch.autograd.graph.saved_tensors_hooks``;
    we add up the size of each distinct underlying storage once (a tensor saved by two ops, or
    two views of one buffer, count once). This is the activation memory of a training step,
    measured exactly and deterministically, independent of the allocator -- not the peak of
    transient buffers freed during the forward pass.
    """
    storages: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        s = t.untyped_storage()
        storages[s.data_ptr()] = s.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn(*args)
    del out
    return sum(storages.values())


def _time_fwd_bwd(fn: Callable, args: tuple[torch.Tensor, ...], repeats: int) -> list[float]:
    """Wall times (s) of ``repeats`` forward + backward passes, after one untimed warm-up."""
    times = []
    for i in range(repeats + 1):
        for t in args:
            t.grad = None
        start = time.perf_counter()
        fn(*args).sum().backward()
        if i:  # the first call warms up caches and the allocator
            times.append(time.perf_counter() - start)
    return times


def ssd_scaling(profile: str = "smoke", seed: int = 0, lengths: list[int] | None = None, *,
                naive_max: int | None = None, quadratic_max: int | None = None,
                repeats: int | None = None, batch: int = 1, heads: int = 4, head_dim: int = 32,
                groups: int = 1, state: int = 32, chunk_size: int = 64,
                threads: int | None = 1) -> dict:
    """Time and activation memory of the three SSD forms against sequence length.

    For each length ``l`` in ``lengths`` (the profile's grid unless given) and each form in
    :data:`FORMS` (naive only up to ``naive_max``, quadratic only up to ``quadratic_max``):

    * ``seconds``: median wall time of forward + backward in float32 over ``repeats`` timed
      runs, each run's time in ``repeat_seconds`` (the speed claim is judged on those);
    * ``saved_bytes``: activation memory, i.e. bytes saved for backward (see
      :func:`saved_activation_bytes`);

    and, at every length the naive form runs at, ``max_abs_err``: the largest ``|y_chunked -
    y_naive|`` in float64 (the two forms are the same operator, so this is rounding only).

    Timing runs with ``threads`` intra-op threads (default 1: single-core timings are far less
    disturbed by other processes than a 2-thread OpenMP pool; ``None`` keeps torch's setting).

    Returns ``{"profile", "seed", "config", "lengths", "forms": {form: {"lengths", "seconds",
    "repeat_seconds", "saved_bytes"}}, "equivalence": {"lengths", "max_abs_err"}}`` -- plain
    lists and numbers.
    """
    grid = profile_settings(PROFILES, profile, lengths=lengths, naive_max=naive_max,
                            quadratic_max=quadratic_max, repeats=repeats)
    lengths, naive_max = list(grid["lengths"]), grid["naive_max"]
    quadratic_max, repeats = grid["quadratic_max"], grid["repeats"]
    shape = dict(batch=batch, heads=heads, head_dim=head_dim, groups=groups, state=state)
    limits = {"naive": naive_max, "quadratic": quadratic_max, "chunked": max(lengths)}

    with num_threads(threads or None) as used_threads:
        forms, equivalence = _scaling_grid(lengths, limits, shape, chunk_size, repeats, seed)

    config = dict(shape, chunk_size=chunk_size, repeats=repeats, naive_max=naive_max,
                  quadratic_max=quadratic_max, timing_dtype="float32", threads=used_threads)
    return {"profile": profile, "seed": seed, "config": config, "lengths": lengths,
            "forms": forms, "equivalence": equivalence}


def _scaling_grid(lengths, limits, shape, chunk_size, repeats, seed):
    forms = {f: {"lengths": [], "seconds": [], "repeat_seconds": [], "saved_bytes": []} for f in FORMS}
    equivalence = {"lengths": [], "max_abs_err": []}
    for l in lengths:
        args = _inputs(l, **shape, dtype=torch.float32, seed=seed + l, requires_grad=True)
        for form in FORMS:
            if l > limits[form]:
                continue
            fn = _run(form, chunk_size)
            forms[form]["lengths"].append(l)
            forms[form]["saved_bytes"].append(saved_activation_bytes(fn, *args))
            times = _time_fwd_bwd(fn, args, repeats)
            forms[form]["seconds"].append(statistics.median(times))
            forms[form]["repeat_seconds"].append(times)
        if l <= limits["naive"]:
            args64 = _inputs(l, **shape, dtype=torch.float64, seed=seed + l)
            with torch.no_grad():
                err = (_run("chunked", chunk_size)(*args64) - _run("naive", chunk_size)(*args64)).abs().max()
            equivalence["lengths"].append(l)
            equivalence["max_abs_err"].append(err.item())
    return forms, equivalence


def equivalence_check(seed: int = 0) -> float:
    """Max ``|chunked - naive|`` in float64 over ``y`` and the final state, on an awkward case.

    Two groups of B/C shared by four heads, a length (100) that is not a multiple of the chunk
    size (16), a skip connection ``D`` and a non-zero initial state -- every branch of the
    chunked code. A correct implementation gives ~1e-15.
    """
    x, dt, A, B, C = _inputs(100, batch=2, heads=4, head_dim=8, groups=2, state=8,
                             dtype=torch.float64, seed=seed)
    gen = torch.Generator().manual_seed(seed + 1)
    D = torch.randn(4, generator=gen, dtype=torch.float64)
    h0 = torch.randn(2, 4, 8, 8, generator=gen, dtype=torch.float64)
    y_ref, s_ref = ssd_naive(x, dt, A, B, C, D=D, initial_state=h0)
    y, s = ssd_chunked(x, dt, A, B, C, chunk_size=16, D=D, initial_state=h0)
    return max((y - y_ref).abs().max().item(), (s - s_ref).abs().max().item())


def _loglog_slope(xs: list[float], ys: list[float]) -> float:
    """Slope of log(y) vs log(x) between the last two points (the asymptotic growth order)."""
    if len(xs) < 2:
        return float("nan")
    return math.log(ys[-1] / ys[-2]) / math.log(xs[-1] / xs[-2])


run = ssd_scaling  # the notebook's experiment: run(profile, seed) -> plain data


def scaling_summary(result: Mapping) -> dict:
    """The numbers the notebook's claims are judged on, from an :func:`ssd_scaling` result.

    * ``max_abs_err``: worst float64 |chunked - recurrence| over all lengths;
    * ``memory_slope[form]``: log-log slope of activation memory over the last two lengths
      (1: linear, 2: quadratic);
    * at the longest length every form ran (``common_length``): ``speedup`` of chunked over the
      recurrence and over the quadratic form, and ``memory_ratio`` (recurrence / chunked).
    """
    forms = result["forms"]
    common = max(set.intersection(*(set(d["lengths"]) for d in forms.values())))

    def at(form: str, key: str) -> float:
        return forms[form][key][forms[form]["lengths"].index(common)]

    return {
        "max_abs_err": max(result["equivalence"]["max_abs_err"]),
        "memory_slope": {f: _loglog_slope(d["lengths"], d["saved_bytes"]) for f, d in forms.items()},
        "common_length": common,
        "speedup": {"vs_naive": at("naive", "seconds") / at("chunked", "seconds"),
                    "vs_quadratic": at("quadratic", "seconds") / at("chunked", "seconds")},
        "memory_ratio": {"naive_over_chunked": at("naive", "saved_bytes") / at("chunked", "saved_bytes"),
                         "quadratic_over_chunked": at("quadratic", "saved_bytes") / at("chunked", "saved_bytes")},
    }


# --- the claim of the ssd_scaling figure --------------------------------------------------------
EQUIVALENCE_TOLERANCE = 1e-8  # float64 |chunked - recurrence|: rounding is ~1e-16
LINEAR_SLOPE_MAX = 1.2  # log-log slope of activation memory that still counts as linear
SUPERLINEAR_SLOPE_MIN = 1.5  # ... and that counts as clearly faster than linear


def judge_ssd_scaling(metrics: Mapping) -> Judgement:
    """The ``ssd_scaling`` claim, from an :func:`ssd_scaling` result (``forms``, ``equivalence``).

    Exact parts (float64 rounding and bytes saved for backward are deterministic): equivalence
    below :data:`EQUIVALENCE_TOLERANCE`, chunked memory slope below :data:`LINEAR_SLOPE_MAX`,
    quadratic slope above :data:`SUPERLINEAR_SLOPE_MIN`, chunked memory the least at the longest
    common length. The timed part, chunked faster than the recurrence there, is decided on the
    timed repeats of each (``repeat_seconds``) by
    :func:`~nvrepro.core.tooling.claims.faster`: a single-repeat smoke run leaves it undecided.
    """
    summary = scaling_summary(metrics)
    slopes, common = summary["memory_slope"], summary["common_length"]

    def repeats(form: str) -> list[float]:
        data = metrics["forms"][form]
        return data["repeat_seconds"][data["lengths"].index(common)]

    parts = {
        "chunked equals the recurrence": exact(
            summary["max_abs_err"] < EQUIVALENCE_TOLERANCE,
            f"float64 max |chunked - recurrence| {summary['max_abs_err']:.1e} vs {EQUIVALENCE_TOLERANCE:g}",
            max_abs_err=summary["max_abs_err"], tolerance=EQUIVALENCE_TOLERANCE),
        "chunked memory linear": exact(
            slopes["chunked"] < LINEAR_SLOPE_MAX, f"log-log slope {slopes['chunked']:.3f} vs < {LINEAR_SLOPE_MAX}",
            slope=slopes["chunked"], threshold=LINEAR_SLOPE_MAX),
        "quadratic memory superlinear": exact(
            slopes["quadratic"] > SUPERLINEAR_SLOPE_MIN,
            f"log-log slope {slopes['quadratic']:.3f} vs > {SUPERLINEAR_SLOPE_MIN}",
            slope=slopes["quadratic"], threshold=SUPERLINEAR_SLOPE_MIN),
        "chunked uses the least activation memory": exact(
            min(summary["memory_ratio"].values()) > 1,
            f"at l={common}: recurrence / chunked {summary['memory_ratio']['naive_over_chunked']:.2f}x, "
            f"quadratic / chunked {summary['memory_ratio']['quadratic_over_chunked']:.2f}x",
            memory_ratio=summary["memory_ratio"], length=common),
        "chunked faster than the recurrence": faster(repeats("chunked"), repeats("naive"),
                                                     f"at l={common}, fwd+bwd"),
    }
    return all_parts(parts)


SSD_SCALING = Claim(
    "ssd_scaling",
    "Chunked SSD equals the recurrence to float64 rounding, its activation memory grows linearly with length "
    "(the quadratic form's does not), and at the longest common length it is faster than the token-by-token "
    "recurrence and uses the least activation memory.",
    judge_ssd_scaling,
)


# --- the decay explorer: the mask L and the chunked algorithm's blocks -------------------------
DECAY_DEFAULTS = dict(A=-1.0, dt=0.1, chunk_size=16, length=64)
"""The explorer's starting point (the headless drawing): ``A`` and ``dt`` inside the ranges
Mamba-2 initialises them in (``A`` in [-16, -1], ``dt`` in [dt_min, dt_max] of the config)."""
REACH_THRESHOLD = 0.01  # a token "still matters" while its decay factor is at least this


def decay_matrix(log_decay: torch.Tensor) -> torch.Tensor:
    """The SSD's decay mask ``L (l, l)`` for per-step log decays ``log_decay (l,)`` (``a_t = dt_t A``):
    ``L[i, j] = exp(a_{j+1} + ... + a_i)`` for ``i >= j`` (1 on the diagonal), 0 above it.

    ``L[i, j]`` is how much of token ``j``'s write into the state is left when token ``i`` reads it.
    """
    if not isinstance(log_decay, torch.Tensor) or log_decay.dim() != 1:
        raise ConfigError(f"log_decay: expected a 1-D tensor (l,), got "
                          f"{tuple(log_decay.shape) if isinstance(log_decay, torch.Tensor) else type(log_decay).__name__}")
    if (log_decay > 0).any():
        raise ConfigError("log_decay: every a_t = dt_t A must be <= 0 (a decay, not a growth)")
    return segsum_decay(log_decay)


def chunk_blocks(length: int, chunk_size: int) -> list[dict]:
    """The blocks the chunked SSD cuts the lower triangle of an ``(l, l)`` matrix into.

    One block per pair of chunks ``(row chunk ci >= column chunk cj)`` of ``chunk_size`` tokens
    (the last chunk may be shorter): ``{"rows": (start, stop), "cols": (start, stop), "kind"}``
    with ``kind`` ``"diagonal"`` (``ci == cj``: computed directly, as a small masked attention
    ``(L ∘ C Bᵀ)``) or ``"off-diagonal"`` (``ci > cj``: never formed, it reaches the rows through
    the state carried from chunk to chunk). Row-major order.
    """
    require_positive_int(length, "length")
    require_positive_int(chunk_size, "chunk_size")
    bounds = [(s, min(s + chunk_size, length)) for s in range(0, length, chunk_size)]
    return [{"rows": rows, "cols": cols, "kind": "diagonal" if ci == cj else "off-diagonal"}
            for ci, rows in enumerate(bounds) for cj, cols in enumerate(bounds[:ci + 1])]


def influence_reach(decay_per_step: float, threshold: float = REACH_THRESHOLD) -> float:
    """Steps ``k`` after which a token's contribution has decayed below ``threshold``: the least
    ``k`` with ``decay_per_step ** k < threshold``, i.e. ``floor(ln threshold / ln decay) + 1``;
    ``inf`` for ``decay_per_step == 1`` (nothing is forgotten). ``decay_per_step = exp(dt A)``."""
    if not 0 < decay_per_step <= 1:
        raise ConfigError(f"decay_per_step: must be in (0, 1], got {decay_per_step!r}")
    if not 0 < threshold < 1:
        raise ConfigError(f"threshold: must be in (0, 1), got {threshold!r}")
    if decay_per_step == 1:
        return math.inf
    k = math.floor(math.log(threshold) / math.log(decay_per_step)) + 1
    # guard the floor against rounding at exact powers: make decay**k < threshold <= decay**(k-1)
    while decay_per_step ** k >= threshold:
        k += 1
    while k > 1 and decay_per_step ** (k - 1) < threshold:
        k -= 1
    return k


def decay_layout(A: float = DECAY_DEFAULTS["A"], dt: float = DECAY_DEFAULTS["dt"],
                 chunk_size: int = DECAY_DEFAULTS["chunk_size"], length: int = DECAY_DEFAULTS["length"],
                 threshold: float = REACH_THRESHOLD) -> dict:
    """Everything the decay explorer draws, for a constant step ``dt > 0`` and rate ``A < 0``.

    Returns ``{"A", "dt", "chunk_size", "length", "threshold", "decay_per_step" (= exp(dt A)),
    "half_life" (steps to halve), "reach" (:func:`influence_reach`), "reach_chunks" (chunks a
    token's influence spans, ``ceil(reach / chunk_size)``), "L" ((length, length) float64,
    :func:`decay_matrix`), "blocks" (:func:`chunk_blocks`), "carried_share" (the share of
    ``L``'s lower triangle in off-diagonal blocks: what the carried state delivers)}``.
    """
    if not (isinstance(A, (int, float)) and A < 0):
        raise ConfigError(f"A: must be a negative number, got {A!r}")
    if not (isinstance(dt, (int, float)) and dt > 0):
        raise ConfigError(f"dt: must be a positive number, got {dt!r}")
    require_positive_int(length, "length")
    require_positive_int(chunk_size, "chunk_size")
    a = float(dt) * float(A)
    rho = math.exp(a)
    L = decay_matrix(torch.full((length,), a, dtype=torch.float64))
    blocks = chunk_blocks(length, chunk_size)
    off = sum((b["rows"][1] - b["rows"][0]) * (b["cols"][1] - b["cols"][0])
              for b in blocks if b["kind"] == "off-diagonal")
    reach = influence_reach(rho, threshold) if rho > 0 else 1  # rho == 0: exp underflowed
    return {"A": float(A), "dt": float(dt), "chunk_size": chunk_size, "length": length,
            "threshold": threshold, "decay_per_step": rho,
            "half_life": math.log(0.5) / a if rho < 1 else math.inf,
            "reach": reach, "reach_chunks": math.ceil(reach / chunk_size) if math.isfinite(reach) else math.inf,
            "L": L, "blocks": blocks, "carried_share": off / (length * (length + 1) / 2)}


def format_decay_layout(layout: Mapping) -> str:
    """Three lines: the decay per step, how far back a token matters, how the chunks split ``L``."""
    n_diag = sum(b["kind"] == "diagonal" for b in layout["blocks"])
    return "\n".join([
        f"A = {layout['A']:g}, dt = {layout['dt']:g}: each step keeps exp(dt*A) = {layout['decay_per_step']:.4f} "
        f"of the state (half-life {layout['half_life']:.1f} tokens)",
        f"a token's weight falls below {layout['threshold']:g} after {layout['reach']} tokens "
        f"= {layout['reach_chunks']} chunk(s) of {layout['chunk_size']}",
        f"l = {layout['length']}: {n_diag} diagonal blocks (quadratic, inside a chunk) and "
        f"{len(layout['blocks']) - n_diag} off-diagonal blocks (through the carried state) hold "
        f"{100 * (1 - layout['carried_share']):.0f}% / {100 * layout['carried_share']:.0f}% of L's lower triangle",
    ])


def show_decay(A: float = DECAY_DEFAULTS["A"], dt: float = DECAY_DEFAULTS["dt"],
               chunk_size: int = DECAY_DEFAULTS["chunk_size"], length: int = DECAY_DEFAULTS["length"]) -> None:
    """The explorer's callback: prints :func:`format_decay_layout` and shows
    :func:`~nvrepro.hybrid.figures.plot_decay_matrix` of :func:`decay_layout` (returns None, so
    a widget does not display a value twice)."""
    import matplotlib.pyplot as plt

    from nvrepro.hybrid.figures.ssd import plot_decay_matrix

    layout = decay_layout(A, dt, chunk_size, length)
    print(format_decay_layout(layout))
    plot_decay_matrix(layout)
    plt.show()


def decay_widget(chunk_sizes: tuple[int, ...] = (4, 8, 16, 32, 64), lengths: tuple[int, ...] = (32, 64, 128)):
    """ipywidgets sliders (A, dt on a log scale, chunk size, length) wired to :func:`show_decay`."""
    import ipywidgets as widgets

    d = DECAY_DEFAULTS
    A = widgets.FloatSlider(value=d["A"], min=-16.0, max=-0.05, step=0.05, description="A")
    dt = widgets.FloatLogSlider(value=d["dt"], base=10, min=-3, max=0, step=0.05, description="dt")
    chunk = widgets.SelectionSlider(options=list(chunk_sizes), value=d["chunk_size"], description="chunk")
    length = widgets.SelectionSlider(options=list(lengths), value=d["length"], description="length")
    return widgets.interactive(show_decay, A=A, dt=dt, chunk_size=chunk, length=length)
