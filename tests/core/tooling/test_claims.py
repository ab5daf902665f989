"""Claims: text and predicate together, judged from metrics, recorded in the sidecar."""

import json

import matplotlib
import pytest

from nvrepro.core.tooling.claims import Claim, Judgement, above, at_least, below, better, find_claim
from nvrepro.core.tooling.figures import new_figure, save_figure
from nvrepro.core.tooling.intervals import wilson


def judge_share(metrics):
    """Held when the Wilson interval of hits/n lies above one half."""
    est = wilson(metrics["hits"], metrics["n"])
    return Judgement(above(est, 0.5), f"share {est}", {"share": est})


SHARE = Claim("share_figure", "More than half of the answers are right.", judge_share)


def test_comparisons_on_intervals_worked_by_hand():
    # Wilson 95% for 8/10 is (0.4902, 0.9433) and for 50/100 (0.4038, 0.5962) (textbook values)
    eight, half = wilson(8, 10), wilson(50, 100)
    assert eight.low == pytest.approx(0.4902, abs=1e-4) and half.high == pytest.approx(0.5962, abs=1e-4)
    assert not above(eight, 0.5) and above(wilson(80, 100), 0.5)  # 80/100: (0.7112, 0.8666)
    assert below(half, 0.6) and not below(half, 0.55)
    assert not better(eight, half)  # overlapping intervals
    assert better(wilson(95, 100), half)  # 95/100: (0.8883, 0.9785) above 0.5962


def test_at_least_is_non_inferiority():
    a, b = wilson(50, 100), wilson(45, 100)  # a.low = 0.4038 < b's 0.45: not shown
    assert not at_least(a, b)
    assert at_least(a, b, margin=0.05)  # 0.4038 >= 0.40
    assert at_least(wilson(900, 1000), wilson(500, 1000))  # 0.8800 >= 0.5


def test_claim_judges_and_names_itself():
    j = SHARE.judge({"hits": 80, "n": 100})
    assert j.held is True and j.to_dict()["evidence"]["share"]["n"] == 100
    assert SHARE.judge({"hits": 8, "n": 10}).held is False  # 0.8 but the interval reaches 0.49
    assert SHARE.claim_id == f"{__name__}:SHARE" and find_claim(SHARE.claim_id) is SHARE
    with pytest.raises(LookupError):
        find_claim(f"{__name__}:judge_share")
    bad = Claim("x", "x", lambda m: 1.0)
    with pytest.raises(TypeError, match="Judgement or a bool"):
        bad.judge({})


def test_save_figure_records_the_judgement(tmp_path):
    matplotlib.use("Agg")
    fig, ax = new_figure()
    ax.plot([0, 1], [0, 1])
    save_figure(fig, "share_figure", tmp_path, metrics={"hits": 80, "n": 100}, claim=SHARE,
                config={}, seed=3, seeds=[3, 4], profile="smoke")
    side = json.loads((tmp_path / "share_figure.json").read_text())
    assert side["claim"] == SHARE.text and side["held"] is True
    assert side["claim_id"] == SHARE.claim_id and side["seeds"] == [3, 4]
    assert side["judgement"]["evidence"]["share"]["low"] == pytest.approx(0.7112, abs=1e-4)
