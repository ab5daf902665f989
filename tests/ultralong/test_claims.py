"""The UltraLong claims, fed hand-made metrics on both sides of each decision.

References are worked here, independently of the predicates: Wilson bounds from the closed form
(:func:`wilson_bounds`), and paired-bootstrap cases built so that the sign of every resample's mean
is known without running a bootstrap (all paired differences of one sign: every resampled mean has
that sign, so the interval has it too; mixed signs with many negative resamples: the interval
reaches below 0, which the test counts over all n^n resamples).
"""

import itertools
import math

import pytest

from nvrepro.core.tooling.figures import to_jsonable
from nvrepro.ultralong.ablations import (ABLATIONS, ACCURACY_MARGIN, LOSS_MARGIN, SFT_LATE_LOSS_TOLERANCE,
                                         SFT_NEEDLE_TOLERANCE)
from nvrepro.ultralong.ablations import summary as ablation_summary
from nvrepro.ultralong.context_extension import (LATE_LOSS, NEEDLE, NEEDLE_MARGIN, RULER, SHORT_LOSS,
                                                 SHORT_LOSS_TOLERANCE, summary)
from nvrepro.ultralong.rope_scaling import ROPE_SCALING, run

Z = 1.959963984540054  # the 97.5% normal quantile: 95% two-sided


def wilson_bounds(k: int, n: int) -> tuple[float, float]:
    """Wilson's score interval at 95%, from its closed form."""
    p = k / n
    centre = (p + Z * Z / (2 * n)) / (1 + Z * Z / n)
    half = Z / (1 + Z * Z / n) * math.sqrt(p * (1 - p) / n + Z * Z / (4 * n * n))
    return centre - half, centre + half


def test_wilson_reference_numbers():
    assert wilson_bounds(8, 10) == pytest.approx((0.4902, 0.9433), abs=1e-4)
    assert wilson_bounds(10, 10)[0] == pytest.approx(0.7225, abs=1e-4)
    assert wilson_bounds(0, 10)[1] == pytest.approx(0.2775, abs=1e-4)


def share_of_negative_resamples(diffs: list[float]) -> float:
    """Exact share of the n^n equally likely bootstrap resamples whose mean is below 0."""
    means = [sum(c) / len(c) for c in itertools.product(diffs, repeat=len(diffs))]
    return sum(m < 0 for m in means) / len(means)


# --- notebook 01: exact checks --------------------------------------------------------------------

def rope_metrics(changes=()):
    """A hand-made setting: s = 4, beta = 2, rotations 10, 3, 1, 0.1 (two pairs above beta);
    ``changes``: ``((method, key), value)`` pairs that break one fact."""
    summary = {"none": {"max_unseen": 0.5, "fastest_ratio": 1.0},
               "linear": {"max_unseen": 0.0, "fastest_ratio": 0.25},
               "ntk": {"max_unseen": 0.2, "fastest_ratio": 1.0},
               "yarn": {"max_unseen": 0.0, "fastest_ratio": 1.0, "unchanged_pairs": 2,
                        "attention_factor": 0.1 * math.log(4) + 1}}
    for (method, key), value in changes:
        summary[method][key] = value
    return {"summary": summary, "table": {"config": {"factor": 4.0, "beta": 2.0}, "rotations": [10, 3, 1, 0.1]}}


def test_rope_claim_holds_on_the_closed_forms_and_fails_on_each_broken_fact():
    assert ROPE_SCALING.judge(rope_metrics()).held is True
    for change, broken in [((("yarn", "unchanged_pairs"), 3), "YaRN: pairs above beta kept"),
                           ((("linear", "fastest_ratio"), 0.3), "PI: fastest pair squeezed by s"),
                           ((("ntk", "max_unseen"), 0.0), "NTK: some unseen angles remain"),
                           ((("yarn", "attention_factor"), 1.0), "YaRN: attention factor 0.1 ln s + 1")]:
        judgement = ROPE_SCALING.judge(rope_metrics([change]))
        assert judgement.held is False
        assert [name for name, p in judgement.evidence["parts"].items() if not p["held"]] == [broken]
    assert ROPE_SCALING.judge(to_jsonable(run("paper"))).held is True  # UltraLong-8B-1M's own setting


# --- notebook 02: accuracy at sL, Wilson over pooled probes ------------------------------------------

def probe_row(niah=(0, 10), ruler=(0, 6), late=(4.0, 4.0), short=(5.0, 5.0)):
    return {"niah_correct_at_sL": niah[0], "niah_probes_at_sL": niah[1], "ruler_correct_at_sL": ruler[0],
            "ruler_probes_at_sL": ruler[1], "late_loss_per_block": list(late), "short_loss_per_block": list(short),
            "short_loss": sum(short) / len(short)}


COUNTS = ("niah_correct_at_sL", "niah_probes_at_sL", "ruler_correct_at_sL", "ruler_probes_at_sL")


def methods(base_short=(5.0, 5.0), **rows):
    """Claim metrics of one seed: the summary rows, the same counts as the seed's headline rows."""
    summary = {m: rows.get(m, probe_row()) for m in ("none", "linear", "ntk", "yarn")}
    headline = {m: [{"seed": 0} | {k: summary[m][k] for k in COUNTS}] for m in ("yarn", "ntk", "none")}
    return {"summary": summary, "headline": headline, "base_short_loss_per_block": list(base_short)}


def test_needle_and_ruler_claims_pool_the_seeds():
    # YaRN 9/10 and 10/10 on two seeds = 19/20 (low 0.7639) against NTK 7/10 + 7/10 = 0.7: held only pooled.
    assert wilson_bounds(9, 10)[0] < 0.7 < wilson_bounds(19, 20)[0]
    one = methods(yarn=probe_row(niah=(9, 10)), ntk=probe_row(niah=(7, 10)))
    assert NEEDLE.judge(one).evidence["parts"]["needle at sL: YaRN >= NTK"]["held"] is False
    two = dict(one, headline={m: rows + [dict(rows[0], seed=1, niah_correct_at_sL=c)]
                              for (m, rows), c in zip(one["headline"].items(), (10, 7, 0))})
    judged = NEEDLE.judge(two)
    assert judged.evidence["parts"]["needle at sL: YaRN >= NTK"]["held"] is True
    assert judged.evidence["per_seed"]["yarn"] == ["9/10", "10/10"] and judged.evidence["seeds"] == [0, 1]
    assert judged.evidence["parts"]["needle at sL: YaRN >= NTK"]["evidence"]["yarn"]["n"] == 20


def test_needle_claim_on_wilson_bounds():
    # 10/10 vs NTK 7/10: 0.7225 >= 0.7. vs none 0/10: 0.7225 >= 0.2775 + 0.25.
    assert wilson_bounds(10, 10)[0] >= 0.7 and wilson_bounds(10, 10)[0] >= wilson_bounds(0, 10)[1] + NEEDLE_MARGIN
    held = NEEDLE.judge(methods(yarn=probe_row(niah=(10, 10)), ntk=probe_row(niah=(7, 10))))
    assert held.held is True
    # 8/10 vs 7/10 and vs 0/10: the point estimates pass (0.8 >= 0.7, 0.8 >= 0 + 0.25), the interval
    # does not: 0.4902 < 0.7 and 0.4902 < 0.5275.
    wide = NEEDLE.judge(methods(yarn=probe_row(niah=(8, 10)), ntk=probe_row(niah=(7, 10))))
    assert wide.held is False and all(p["held"] is False for p in wide.evidence["parts"].values())
    # The margin: 9/10 (low 0.5958) clears none at 0/10 (0.5275) but not none at 1/10 (0.4042 + 0.25).
    assert wilson_bounds(1, 10)[1] + NEEDLE_MARGIN > wilson_bounds(9, 10)[0] > wilson_bounds(0, 10)[1] + NEEDLE_MARGIN
    part = f"needle at sL: YaRN >= none + {NEEDLE_MARGIN}"
    assert NEEDLE.judge(methods(yarn=probe_row(niah=(9, 10)))).evidence["parts"][part]["held"] is True
    assert NEEDLE.judge(methods(yarn=probe_row(niah=(9, 10)), none=probe_row(niah=(1, 10)))
                        ).evidence["parts"][part]["held"] is False
    estimate = held.evidence["parts"]["needle at sL: YaRN >= NTK"]["evidence"]["yarn"]
    assert (estimate["low"], estimate["n"]) == (pytest.approx(wilson_bounds(10, 10)[0], abs=1e-9), 10)


def test_further_claim_on_wilson_bounds():
    from nvrepro.ultralong.context_extension import FURTHER

    def further(yarn, ntk, none):
        rows = {m: [{"seed": 0, "niah_correct_at_sL": k, "niah_probes_at_sL": 10, "ruler_correct_at_sL": 0,
                     "ruler_probes_at_sL": 10}] for m, k in (("yarn", yarn), ("ntk", ntk), ("none", none))}
        return {"further": {"factor": 16, "length": 4096, "headline": rows}}

    # 10/10 (low 0.7225) >= NTK's 0.7 and above none's whole interval at 0/10 (high 0.2775)
    assert FURTHER.judge(further(10, 7, 0)).held is True
    # 8/10 vs 7/10: low 0.4902 < 0.7; vs none 3/10: 0.4902 < high 0.6032, the intervals overlap
    assert wilson_bounds(8, 10)[0] < wilson_bounds(3, 10)[1]
    judged = FURTHER.judge(further(8, 7, 3))
    assert judged.held is False and all(p["held"] is False for p in judged.evidence["parts"].values())
    assert list(judged.evidence["parts"]) == ["needle at 16L: YaRN >= NTK", "needle at 16L: YaRN > none"]


def test_ruler_claim_on_wilson_bounds():
    # 6/6 (low 0.6097) vs NTK 3/6 (0.5) and none 0/6 (high 0.3903): both hold.
    assert wilson_bounds(6, 6)[0] > 0.5 and wilson_bounds(6, 6)[0] > wilson_bounds(0, 6)[1]
    assert RULER.judge(methods(yarn=probe_row(ruler=(6, 6)), ntk=probe_row(ruler=(3, 6)))).held is True
    # 4/6 vs 1/6: 0.667 > 0.167 on the points, but 0.2998 < 0.5635: not separated.
    assert wilson_bounds(4, 6)[0] < wilson_bounds(1, 6)[1]
    wide = RULER.judge(methods(yarn=probe_row(ruler=(4, 6)), none=probe_row(ruler=(1, 6))))
    assert wide.held is False and wide.evidence["parts"]["RULER-style at sL: YaRN > none"]["held"] is False


# --- notebook 02: losses, paired over blocks ---------------------------------------------------------

def test_late_loss_claim_paired_over_blocks():
    yarn = [4.0, 4.1, 4.2, 4.3]
    ntk = [y + d for y, d in zip(yarn, [0.2, 0.3, 0.25, 0.35])]  # every block worse than YaRN
    none = [y + 1 for y in yarn]
    assert LATE_LOSS.judge(methods(yarn=probe_row(late=yarn), ntk=probe_row(late=ntk),
                                   none=probe_row(late=none))).held is True
    better_ntk = [y - 0.1 for y in yarn]
    assert LATE_LOSS.judge(methods(yarn=probe_row(late=yarn), ntk=probe_row(late=better_ntk),
                                   none=probe_row(late=none))).held is False
    # Mean NTK - YaRN = +0.1 (YaRN lower on average) but the blocks disagree: over a third of the
    # resamples have a negative mean, so the interval reaches below 0.
    diffs = [0.5, -0.4, 0.6, -0.3]
    assert sum(diffs) / 4 > 0 and share_of_negative_resamples(diffs) > 0.3
    mixed = LATE_LOSS.judge(methods(yarn=probe_row(late=yarn), ntk=probe_row(late=[y + d for y, d in zip(yarn, diffs)]),
                                    none=probe_row(late=none)))
    gain = mixed.evidence["parts"]["late-position loss at sL: YaRN <= NTK"]["evidence"]["ntk_minus_yarn"]
    assert mixed.held is False and gain["low"] < 0 < gain["value"] == pytest.approx(0.1)
    one_block = LATE_LOSS.judge(methods(yarn=probe_row(late=[4.0]), ntk=probe_row(late=[5.0]),
                                        none=probe_row(late=[5.0])))
    assert one_block.held is None  # no interval from one block


def test_short_loss_claim_within_tolerance_of_the_base_paired_over_blocks():
    base = [5.0, 5.0, 5.0, 5.0]
    limit = (1 + SHORT_LOSS_TOLERANCE) * 5.0  # 5.25
    held = SHORT_LOSS.judge(methods(yarn=probe_row(short=[5.1, 5.2, 5.0, 5.15]), base_short=base))
    assert held.held is True  # every block below 5.25
    over = SHORT_LOSS.judge(methods(yarn=probe_row(short=[5.3, 5.4, 5.35, 5.5]), base_short=base))
    assert over.held is False  # every block above 5.25
    # Mean 5.2 <= 5.25 (the old point rule held) but the blocks straddle the limit.
    yarn = [4.5, 5.9, 4.6, 5.8]
    diffs = [limit - y for y in yarn]
    assert sum(yarn) / 4 <= limit and share_of_negative_resamples(diffs) > 0.3
    wide = SHORT_LOSS.judge(methods(yarn=probe_row(short=yarn), base_short=base))
    assert wide.held is False


# --- notebook 03: the ablation parts ------------------------------------------------------------------

def arm(niah=(0, 10), ruler=(0, 6), late=(4.0, 4.1, 4.2, 4.3), nll=(30.0, 60.0, 45.0), tokens=(10, 20, 15)):
    return {"niah_correct_at_sL": niah[0], "niah_probes_at_sL": niah[1], "ruler_correct_at_sL": ruler[0],
            "ruler_probes_at_sL": ruler[1], "late_loss_per_block": list(late), "instruction_nll": list(nll),
            "instruction_tokens": list(tokens)}


def arms(**rows):
    base = {"separator": arm(), "no_separator": arm(late=(4.5, 4.6, 4.7, 4.8)),
            "no_upsampling": arm(late=(4.2, 4.3, 4.4, 4.5)), "two_step": arm(late=(5, 5.1, 5.2, 5.3)),
            "instruct": arm(late=(4.0, 4.1, 4.2, 4.3), nll=(20.0, 40.0, 30.0))}
    return {"summary": base | rows}


def parts_of(judgement):
    return {name: p["held"] for name, p in judgement.evidence["parts"].items()}


def test_ablations_hold_on_losses_when_nothing_retrieves():
    judgement = ABLATIONS.judge(arms())
    assert judgement.held is True
    assert not any("needle" in name for name in parts_of(judgement))  # accuracy parts left out
    assert judgement.evidence["accuracy_parts"].startswith("left out")
    # The response-loss gain averages to the difference of the pooled losses: 135/45 - 90/45 = 1.
    gain = judgement.evidence["parts"]["short SFT learns the instruction format (response loss drops)"]["evidence"]["gain"]
    assert gain["value"] == pytest.approx(135 / 45 - 90 / 45) and gain["n"] == 3


def test_ablation_loss_parts_fail_on_their_own():
    sep_worse = ABLATIONS.judge(arms(no_separator=arm(late=(3.5, 3.6, 3.7, 3.8))))
    assert sep_worse.held is False
    assert [n for n, ok in parts_of(sep_worse).items() if not ok] == ["separator <= no separator (late-position loss)"]
    # SFT's late loss 6% above the separator arm's on every block: outside 5%.
    sft_late = ABLATIONS.judge(arms(instruct=arm(late=[x * 1.06 for x in (4.0, 4.1, 4.2, 4.3)], nll=(20.0, 40.0, 30.0))))
    assert SFT_LATE_LOSS_TOLERANCE < 0.06
    assert parts_of(sft_late)[f"short SFT keeps late-position loss (within {SFT_LATE_LOSS_TOLERANCE:.0%})"] is False
    no_drop = ABLATIONS.judge(arms(instruct=arm(nll=(31.0, 61.0, 46.0))))
    assert parts_of(no_drop)["short SFT learns the instruction format (response loss drops)"] is False


def test_ablation_accuracy_parts_on_wilson_bounds():
    needle = f"short SFT keeps needle at sL (within {SFT_NEEDLE_TOLERANCE})"
    # Separator 8/10 passkeys + 5/6 RULER-style = 13/16 pooled (low ~0.57) against 3/16 (0.1875).
    assert wilson_bounds(13, 16)[0] >= 3 / 16
    # SFT 10/10 (low 0.7225) >= 0.8 - 0.1: kept.
    assert wilson_bounds(10, 10)[0] >= 0.8 - SFT_NEEDLE_TOLERANCE
    rows = dict(separator=arm(niah=(8, 10), ruler=(5, 6)), no_separator=arm(niah=(2, 10), ruler=(1, 6), late=(4.5, 4.6, 4.7, 4.8)),
                no_upsampling=arm(niah=(2, 10), ruler=(1, 6), late=(4.2, 4.3, 4.4, 4.5)),
                two_step=arm(niah=(2, 10), ruler=(1, 6), late=(5, 5.1, 5.2, 5.3)),
                instruct=arm(niah=(10, 10), nll=(20.0, 40.0, 30.0)))
    judgement = ABLATIONS.judge(arms(**rows))
    assert judgement.held is True and parts_of(judgement)[needle] is True
    # SFT 8/10: same point estimate as the separator arm; [0.4902, 0.9433] straddles 0.7: undecided.
    assert wilson_bounds(8, 10)[0] < 0.8 - SFT_NEEDLE_TOLERANCE < wilson_bounds(8, 10)[1]
    rows["instruct"] = arm(niah=(8, 10), nll=(20.0, 40.0, 30.0))
    judgement = ABLATIONS.judge(arms(**rows))
    assert judgement.held is None and parts_of(judgement)[needle] is None
    # SFT 2/10: its whole interval [0.0567, 0.5098] lies below 0.7: not held.
    assert wilson_bounds(2, 10)[1] < 0.8 - SFT_NEEDLE_TOLERANCE
    rows["instruct"] = arm(niah=(2, 10), nll=(20.0, 40.0, 30.0))
    judgement = ABLATIONS.judge(arms(**rows))
    assert judgement.held is False and parts_of(judgement)[needle] is False


def test_ablation_non_inferiority_margins():
    """Equal arms can pass "at least as good" within the stated margins; a straddle is undecided."""
    sep_acc = "separator >= no separator (needle + RULER at sL)"
    up_loss = "upsampled <= not upsampled (late-position loss)"
    # 68 vs 68 of 100: 68's Wilson low 0.5834 >= 0.68 - 0.1 (the 2026-12-05 run failed such ties).
    assert wilson_bounds(68, 100)[0] >= 0.68 - ACCURACY_MARGIN
    same = dict(niah=(38, 50), ruler=(30, 50))
    rows = {name: arm(niah=same["niah"], ruler=same["ruler"], late=late) for name, late in
            [("separator", (4.0, 4.1, 4.2, 4.3)), ("no_separator", (4.0, 4.1, 4.2, 4.3)),
             ("no_upsampling", (4.0, 4.1, 4.2, 4.3)), ("two_step", (4.0, 4.1, 4.2, 4.3))]}
    rows["instruct"] = arm(niah=(38, 50), late=(4.0, 4.1, 4.2, 4.3), nll=(20.0, 40.0, 30.0))
    tie = ABLATIONS.judge(arms(**rows))
    assert parts_of(tie)[sep_acc] is True and parts_of(tie)[up_loss] is True  # identical losses: 1% headroom
    # 70 vs 68: the level 0.6 lies inside 68's interval [0.5834, 0.7633]: undecided.
    rows["no_separator"] = arm(niah=(38, 50), ruler=(32, 50), late=(4.0, 4.1, 4.2, 4.3))
    assert parts_of(ABLATIONS.judge(arms(**rows)))[sep_acc] is None
    # A late loss 1% +- 0.5% above the other arm's, block by block: the gain straddles 0: undecided.
    rows["no_upsampling"] = arm(niah=(38, 50), ruler=(30, 50),
                                late=[x / f for x, f in zip((4.0, 4.1, 4.2, 4.3), (1.005, 1.015, 1.005, 1.015))])
    assert LOSS_MARGIN == 0.01
    assert parts_of(ABLATIONS.judge(arms(**rows)))[up_loss] is None


# --- from the experiments' results to the claims -------------------------------------------------------

def evaluation(correct, ruler_correct, late_blocks, short_blocks):
    """An ``extension.evaluate`` result: 3 depths x 2 lengths, 2 samples per cell, one RULER task."""
    return {"niah": {"lengths": [10, 80], "depths": [0.0, 0.5, 1.0], "samples": 2, "correct": correct,
                     "accuracy": [[c / 2 for c in row] for row in correct], "per_length": [0.0, 0.0], "mean": 0.0},
            "ruler": {"lengths": [10, 80], "samples": 2, "correct": {"multikey": ruler_correct},
                      "tasks": {"multikey": [c / 2 for c in ruler_correct]}, "average": [0.0, 0.0]},
            "loss_by_position": {"edges": [0, 40, 80], "loss": [1.0, 1.0], "loss_per_block": late_blocks},
            "short_loss": sum(short_blocks) / len(short_blocks), "short_loss_per_block": short_blocks}


def test_summaries_carry_the_counts_the_claims_need():
    e = evaluation([[0, 1], [1, 2], [2, 2]], [2, 1], [[5.0, 4.0], [5.0, 4.2]], [6.0, 6.2])
    result = {"base": {"short_loss": 7.0}, "methods": {m: {"eval": e, "short_loss_scaled": 7.0} for m in
                                                         ("none", "linear", "ntk", "yarn")}}
    row = summary(result)["yarn"]
    # the last column: 1 + 2 + 2 of 3 depths x 2 samples; RULER 1 of 2; late bin of each block
    assert (row["niah_correct_at_sL"], row["niah_probes_at_sL"]) == (5, 6)
    assert (row["ruler_correct_at_sL"], row["ruler_probes_at_sL"]) == (1, 2)
    assert row["late_loss_per_block"] == [4.0, 4.2] and row["short_loss_per_block"] == [6.0, 6.2]
    headline = {m: [{"seed": 0} | {k: summary(result)[m][k] for k in COUNTS}] for m in ("yarn", "ntk", "none")}
    metrics = to_jsonable({"summary": summary(result), "headline": headline, "base_short_loss_per_block": [6.0, 6.2]})
    for claim in (NEEDLE, RULER, LATE_LOSS, SHORT_LOSS):  # identical arms: no "better than" holds
        assert claim.judge(metrics).held is not None
    assert NEEDLE.judge(metrics).held is False and SHORT_LOSS.judge(metrics).held is True
    arms_result = {"arms": {a: dict(e, instruction_acc=0.0, instruction_loss=2.0, instruction_nll=[2.0, 4.0],
                                    instruction_tokens=[1, 2]) for a in ("separator", "no_separator", "no_upsampling",
                                                                        "two_step", "instruct")}}
    row = ablation_summary(arms_result)["instruct"]
    assert (row["niah_correct_at_sL"], row["instruction_nll"], row["instruction_tokens"]) == (5, [2.0, 4.0], [1, 2])
    assert ABLATIONS.judge(to_jsonable({"summary": ablation_summary(arms_result)})).held is False  # no response drop


def test_claims_are_module_level_and_named_after_their_figures():
    from nvrepro.ultralong.context_extension import FURTHER

    names = {c.name: c.claim_id for c in (ROPE_SCALING, NEEDLE, RULER, LATE_LOSS, SHORT_LOSS, ABLATIONS, FURTHER)}
    assert names == {"rope_scaling": "nvrepro.ultralong.rope_scaling:ROPE_SCALING",
                     "niah_heatmaps": "nvrepro.ultralong.context_extension:NEEDLE",
                     "ruler_vs_length": "nvrepro.ultralong.context_extension:RULER",
                     "loss_by_position": "nvrepro.ultralong.context_extension:LATE_LOSS",
                     "short_context_loss": "nvrepro.ultralong.context_extension:SHORT_LOSS",
                     "ablations": "nvrepro.ultralong.ablations:ABLATIONS",
                     "beyond_8x": "nvrepro.ultralong.context_extension:FURTHER"}
