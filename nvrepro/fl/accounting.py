"""Privacy accounting of user-level DP-FedAvg through Google's ``dp_accounting``.

The paper (arXiv 2305.12132, Sec. 2 and App. A) trains on-device LMs with DP-FedAvg: each round the
server samples clients, clips each client's update to L2 norm ``C``, adds ``N(0, (z C)^2 I)`` to
the SUM of clipped updates and divides by the number of sampled clients (:mod:`nvrepro.fl.clipping`).
The privacy guarantee is user-level (epsilon, delta)-DP over ``rounds`` such rounds; how large
epsilon is depends on the noise multiplier ``z``, on how clients are sampled and on the
neighbouring relation the guarantee is stated for. Two sampling assumptions, both a parameter:

* ``"poisson"``: every one of the ``N`` clients joins a round independently with probability
  ``q``. Event ``SelfComposed(PoissonSampled(q, Gaussian(z)), rounds)``, relation add/remove-one
  (a user's data present or absent). This is the textbook DP-FedAvg analysis (McMahan et al. 2018)
  and what DP-SGD libraries report; both accountants support it, PLD is the tighter.
* ``"fixed"``: the server draws exactly ``m`` of ``N`` clients without replacement, which is what
  Flower does (``fraction_fit`` / ``min_fit_clients``). With ``m`` fixed the population size is
  public, so the relation is replace-one (one user's data swapped for another's). Event
  ``SelfComposed(SampledWithoutReplacement(N, m, Gaussian(z / 2)), rounds)`` under
  ``RdpAccountant(REPLACE_ONE)`` (Wang, Balle, Kasiviswanathan 2019, Thm. 27).

Two facts about ``dp_accounting`` 0.6 shape the ``"fixed"`` case:

1. Only the RDP accountant supports ``SampledWithoutReplacementDpEvent``; the PLD accountant
   rejects it, so ``accountant="pld", sampling="fixed"`` raises :class:`ConfigError` rather than
   quietly substituting another event.
2. ``GaussianDpEvent``'s noise multiplier is ``s / C`` with ``C`` the per-client norm bound, but
   the RDP accountant hands it unchanged to a formula normalised by the replace-one L2
   SENSITIVITY, which for a sum of norm-``C`` vectors is ``2C`` (swap ``+v`` for ``-v``). With ``z``
   passed as is, ``m = N`` gives the add/remove epsilon of ``Gaussian(z)``, below what PLD's own
   replace-one Gaussian says (google/differential-privacy issue #378). We therefore pass ``z / 2``,
   the noise over the true sensitivity; ``tests/fl/test_accounting.py`` pins both facts so a fixed
   library version is noticed.

Replace-one epsilons are larger than add/remove ones for the same noise (the sum moves by up to
``2C`` instead of ``C``) and are a different promise, so tables name the sampling next to every
epsilon.
"""

from __future__ import annotations

import itertools
import logging
import math
from typing import Iterable, Literal

import dp_accounting
from dp_accounting import dp_event
from dp_accounting.pld import PLDAccountant
from dp_accounting.rdp import RdpAccountant

from nvrepro.core.tooling.validation import require, require_positive_int

Accountant = Literal["rdp", "pld"]
Sampling = Literal["poisson", "fixed"]
ACCOUNTANTS = ("rdp", "pld")
SAMPLINGS = ("poisson", "fixed")
MIN_NOISE_MULTIPLIER = 0.05  # calibration does not search below this: epsilons there are in the hundreds
NeighborRel = dp_accounting.NeighboringRelation


# --------------------------------------------------------------------------------------- validation

def _require_number(value: float, field_name: str, low: float, high: float, *,
                    low_open: bool = True, high_open: bool = True) -> None:
    """:class:`ConfigError` naming ``field_name`` unless ``value`` is a real number in the interval."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (value > low if low_open else value >= low) and (value < high if high_open else value <= high)
    interval = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    require(ok, field_name, f"must be a number in {interval}, got {value!r}")


def _validate(rounds: int, delta: float, accountant: str, sampling: str) -> None:
    require_positive_int(rounds, "rounds")
    _require_number(delta, "delta", 0.0, 1.0)
    require(accountant in ACCOUNTANTS, "accountant", f"must be one of {ACCOUNTANTS}, got {accountant!r}")
    require(sampling in SAMPLINGS, "sampling", f"must be one of {SAMPLINGS}, got {sampling!r}")
    require(not (accountant == "pld" and sampling == "fixed"), "accountant",
            "dp_accounting's PLD accountant does not support sampling without replacement "
            "(SampledWithoutReplacementDpEvent); use accountant='rdp' for sampling='fixed', "
            "or sampling='poisson'")


def _validate_clients(clients_per_round: int, population: int) -> None:
    require_positive_int(clients_per_round, "clients_per_round")
    require_positive_int(population, "population")
    require(clients_per_round <= population, "clients_per_round",
            f"must be at most population ({population}), got {clients_per_round}")


# ------------------------------------------------------------------------------- events, accountants

def dp_fedavg_event(noise_multiplier: float, rounds: int, *, sampling: Sampling,
                    sampling_rate: float | None = None, clients_per_round: int | None = None,
                    population: int | None = None) -> dp_event.DpEvent:
    """The ``DpEvent`` of ``rounds`` DP-FedAvg rounds (unvalidated; see the module docstring).

    ``"poisson"`` needs ``sampling_rate`` q; ``"fixed"`` needs ``clients_per_round`` m and
    ``population`` N, and carries ``noise_multiplier / 2`` (the replace-one sensitivity is 2C)."""
    if sampling == "poisson":
        one_round = dp_event.PoissonSampledDpEvent(sampling_rate, dp_event.GaussianDpEvent(noise_multiplier))
    else:
        one_round = dp_event.SampledWithoutReplacementDpEvent(
            population, clients_per_round, dp_event.GaussianDpEvent(noise_multiplier / 2))
    return dp_event.SelfComposedDpEvent(one_round, rounds)


def make_accountant(accountant: Accountant, sampling: Sampling) -> dp_accounting.PrivacyAccountant:
    """A fresh accountant for ``sampling``'s neighbouring relation (add/remove for Poisson,
    replace-one for fixed-size sampling)."""
    relation = NeighborRel.REPLACE_ONE if sampling == "fixed" else NeighborRel.ADD_OR_REMOVE_ONE
    if accountant == "pld":
        return PLDAccountant(relation)
    return RdpAccountant(neighboring_relation=relation)


class _NoConvergenceNotes(logging.Filter):
    """Drops the RDP accountant's "failed to converge ... Excluding this order" warnings: an order
    it cannot evaluate is left out of the minimum over orders, which the epsilon already accounts
    for; hundreds of such lines would bury a notebook's output."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "failed to converge" not in record.getMessage()


logging.getLogger("absl").addFilter(_NoConvergenceNotes())


def _epsilon(event: dp_event.DpEvent, delta: float, accountant: Accountant, sampling: Sampling) -> float:
    return float(make_accountant(accountant, sampling).compose(event).get_epsilon(delta))


# ------------------------------------------------------------------------------------------ epsilon

def epsilon(noise_multiplier: float, sampling_rate: float, rounds: int, delta: float, *,
            accountant: Accountant = "rdp") -> float:
    """epsilon of ``rounds`` rounds of DP-FedAvg with Poisson client sampling at rate ``sampling_rate``
    (add/remove-one user-level DP), for ``delta``.

    Fixed-size sampling needs the population and clients per round, not just their ratio: see
    :func:`epsilon_for_rounds`."""
    _require_number(noise_multiplier, "noise_multiplier", 0.0, math.inf)
    _validate(rounds, delta, accountant, "poisson")
    _require_number(sampling_rate, "sampling_rate", 0.0, 1.0, high_open=False)
    event = dp_fedavg_event(noise_multiplier, rounds, sampling="poisson", sampling_rate=sampling_rate)
    return _epsilon(event, delta, accountant, "poisson")


def epsilon_for_rounds(noise_multiplier: float, clients_per_round: int, population: int, rounds: int,
                       delta: float, *, accountant: Accountant = "rdp", sampling: Sampling = "fixed") -> float:
    """epsilon of ``rounds`` rounds with ``clients_per_round`` of ``population`` clients a round.

    ``sampling="fixed"`` (the default: what Flower does): exactly m of N without replacement,
    replace-one DP, RDP only. ``sampling="poisson"``: Poisson sampling at q = m / N (m is then the
    expected number per round), add/remove DP, either accountant."""
    _require_number(noise_multiplier, "noise_multiplier", 0.0, math.inf)
    _validate(rounds, delta, accountant, sampling)
    _validate_clients(clients_per_round, population)
    event = dp_fedavg_event(noise_multiplier, rounds, sampling=sampling, sampling_rate=clients_per_round / population,
                            clients_per_round=clients_per_round, population=population)
    return _epsilon(event, delta, accountant, sampling)


# -------------------------------------------------------------------------------------- calibration

def _calibrate(make_event, target_epsilon: float, delta: float, accountant: Accountant, sampling: Sampling,
               max_noise_multiplier: float, tol: float) -> float:
    """The smallest z in [MIN_NOISE_MULTIPLIER, max_noise_multiplier] with epsilon(z) <= target, to
    within ``tol`` (epsilon falls as z grows). The bracket is found by steps of x1.5 from a start
    rather than at the range's ends: PLD's cost grows fast as z shrinks (seconds at z = 0.3), so
    PLD starts from the RDP answer, an upper end since PLD <= RDP."""
    _require_number(target_epsilon, "target_epsilon", 0.0, math.inf)
    _require_number(max_noise_multiplier, "max_noise_multiplier", MIN_NOISE_MULTIPLIER, math.inf)
    _require_number(tol, "tol", 0.0, math.inf)
    if accountant == "pld":
        start = _calibrate(make_event, target_epsilon, delta, "rdp", sampling, max_noise_multiplier, tol)
    else:
        start = min(1.0, max_noise_multiplier)

    def eps(z: float) -> float:
        return _epsilon(make_event(z), delta, accountant, sampling)

    high = start
    while (high_eps := eps(high)) > target_epsilon:
        require(high < max_noise_multiplier, "target_epsilon",
                f"{target_epsilon:g} is not reachable with noise_multiplier <= {max_noise_multiplier:g} "
                f"(epsilon there is {high_eps:.4g}); raise max_noise_multiplier, sample fewer clients or "
                "run fewer rounds")
        high = min(1.5 * high, max_noise_multiplier)
    low = max(high / 1.5, MIN_NOISE_MULTIPLIER)
    while eps(low) <= target_epsilon:
        if low <= MIN_NOISE_MULTIPLIER:  # the floor meets the target: do not search below it
            return MIN_NOISE_MULTIPLIER
        high, low = low, max(low / 1.5, MIN_NOISE_MULTIPLIER)
    return float(dp_accounting.calibrate_dp_mechanism(
        lambda: make_accountant(accountant, sampling), make_event, target_epsilon, delta,
        dp_accounting.ExplicitBracketInterval(low, high), tol=tol))


def noise_multiplier_for_epsilon(target_epsilon: float, sampling_rate: float, rounds: int, delta: float, *,
                                 accountant: Accountant = "rdp", max_noise_multiplier: float = 100.0,
                                 tol: float = 1e-3) -> float:
    """The smallest noise multiplier (within ``tol``) whose Poisson-sampled epsilon is at most
    ``target_epsilon``; :class:`ConfigError` when ``max_noise_multiplier`` does not reach it."""
    _validate(rounds, delta, accountant, "poisson")
    _require_number(sampling_rate, "sampling_rate", 0.0, 1.0, high_open=False)
    return _calibrate(lambda z: dp_fedavg_event(z, rounds, sampling="poisson", sampling_rate=sampling_rate),
                      target_epsilon, delta, accountant, "poisson", max_noise_multiplier, tol)


def noise_multiplier_for_rounds(target_epsilon: float, clients_per_round: int, population: int, rounds: int,
                                delta: float, *, accountant: Accountant = "rdp", sampling: Sampling = "fixed",
                                max_noise_multiplier: float = 100.0, tol: float = 1e-3) -> float:
    """:func:`noise_multiplier_for_epsilon` for m of N clients a round (see :func:`epsilon_for_rounds`)."""
    _validate(rounds, delta, accountant, sampling)
    _validate_clients(clients_per_round, population)
    return _calibrate(lambda z: dp_fedavg_event(z, rounds, sampling=sampling,
                                                sampling_rate=clients_per_round / population,
                                                clients_per_round=clients_per_round, population=population),
                      target_epsilon, delta, accountant, sampling, max_noise_multiplier, tol)


# ---------------------------------------------------------------------------- table and explorer

DEFAULT_COLUMNS: tuple[tuple[Accountant, Sampling], ...] = (("rdp", "poisson"), ("pld", "poisson"), ("rdp", "fixed"))


def epsilon_table(noise_multipliers: Iterable[float], clients_per_round: Iterable[int], population: int,
                  rounds: Iterable[int], delta: float, *,
                  columns: Iterable[tuple[Accountant, Sampling]] = DEFAULT_COLUMNS) -> list[dict]:
    """One row per (noise multiplier, clients per round, rounds) of the grid, with the sampling rate
    and an ``eps_<accountant>_<sampling>`` value per column (``pd.DataFrame(rows)`` for a table)."""
    columns = tuple(columns)
    rows = []
    for z, m, t in itertools.product(noise_multipliers, clients_per_round, rounds):
        row = dict(noise_multiplier=z, clients_per_round=m, population=population, sampling_rate=m / population,
                   rounds=t, delta=delta)
        for acc, samp in columns:
            row[f"eps_{acc}_{samp}"] = epsilon_for_rounds(z, m, population, t, delta, accountant=acc, sampling=samp)
        rows.append(row)
    return rows


def explain_epsilon(noise_multiplier: float, clients_per_round: int, population: int, rounds: int,
                    log10_delta: float, *, clip_norm: float = 1.0) -> str:
    """What the explorer prints: epsilon by RDP and PLD (Poisson at q = m/N), by RDP for fixed-size
    sampling, and the noise std on the averaged update, z C / m."""
    delta = 10.0 ** log10_delta
    _require_number(clip_norm, "clip_norm", 0.0, math.inf)
    eps = {col: epsilon_for_rounds(noise_multiplier, clients_per_round, population, rounds, delta,
                                   accountant=col[0], sampling=col[1]) for col in DEFAULT_COLUMNS}
    return "\n".join([
        f"z = {noise_multiplier:g}, m = {clients_per_round} of N = {population} clients a round "
        f"(q = {clients_per_round / population:.4g}), {rounds} rounds, delta = {delta:.1e}",
        f"  Poisson sampling, add/remove DP:  epsilon RDP = {eps['rdp', 'poisson']:.4g}, "
        f"PLD = {eps['pld', 'poisson']:.4g}",
        f"  fixed-size sampling (Flower), replace-one DP:  epsilon RDP = {eps['rdp', 'fixed']:.4g}",
        f"  noise std on the mean update: z C / m = {noise_multiplier * clip_norm / clients_per_round:.4g} "
        f"(C = {clip_norm:g})",
    ])


def epsilon_explorer() -> object:
    """ipywidgets sliders (noise multiplier, clients per round, population, rounds, log10 delta)
    printing :func:`explain_epsilon`."""
    import ipywidgets as widgets
    from IPython.display import display

    def show(noise_multiplier, clients_per_round, population, rounds, log10_delta) -> None:
        try:
            print(explain_epsilon(noise_multiplier, clients_per_round, population, rounds, log10_delta))
        except ValueError as exc:  # e.g. more clients per round than the population: say so, keep the sliders
            print(exc)

    on_release = dict(continuous_update=False)  # PLD takes ~0.5 s: recompute when a slider is let go
    widget = widgets.interactive(
        show,
        noise_multiplier=widgets.FloatSlider(value=1.0, min=0.1, max=5.0, step=0.05, **on_release),
        clients_per_round=widgets.IntSlider(value=100, min=1, max=2000, **on_release),
        population=widgets.IntSlider(value=10_000, min=100, max=100_000, step=100, **on_release),
        rounds=widgets.IntSlider(value=1000, min=1, max=5000, **on_release),
        log10_delta=widgets.FloatSlider(value=-6.0, min=-10.0, max=-2.0, step=0.5, **on_release),
    )
    display(widget)
    return widget
