"""The notebooks' printed tables and claim verdicts."""

from nvrepro.core.tooling.claims import Claim, all_parts
from nvrepro.ultralong.judging import part
from nvrepro.core.tooling.report import show, table_text


def test_table_text_lays_out_fixed_width_columns():
    rows = {"yarn": {"acc": 0.5, "change": -0.0294}, "none": {"acc": 1.0, "change": 0.1}}
    text = table_text(rows, [("acc", "acc", ".2f"), ("change", "change", "+.1%")], first="method",
                      labels={"yarn": "YaRN"}, first_width=8)
    assert text.split("\n") == ["method    acc  change",
                                "YaRN     0.50   -2.9%",
                                "none     1.00  +10.0%"]


def test_show_prints_each_part_and_judges_the_json_form(capsys):
    seen = []

    def predicate(metrics):
        seen.append(metrics)
        return all_parts({"a": part(True, "r", x=0.123456), "b": part(False, "r")}, evidence={"margin": 0.25})

    judgement = show(Claim("fig", "text of the claim", predicate), {"values": (1.0, float("nan"))})
    assert seen == [{"values": [1.0, "nan"]}]  # tuples as lists, nan as a string: the sidecar's form
    out = capsys.readouterr().out.split("\n")
    assert out[:5] == ["Claim (fig): text of the claim", "claim DID NOT HOLD, part by part:",
                       "          held: a: r: x 0.1235", "  did not hold: b: r", "  margin: 0.25"]
    assert judgement.held is False


def test_check_claim_prediction_follows_the_claims_judgement(capsys):
    from nvrepro.core.tooling.claims import Claim, exact, not_applicable
    from nvrepro.core.tooling.verdicts import check_claim_prediction

    holds = Claim("t_holds", "x", lambda m: exact(m["v"] > 0, "v > 0"))
    assert check_claim_prediction(True, holds, {"v": 1}).ok is True
    assert check_claim_prediction(True, holds, {"v": -1}).ok is False
    assert check_claim_prediction(None, holds, {"v": 1}).ok is None
    undecided = Claim("t_undecided", "x", lambda m: not_applicable("too few"))
    assert check_claim_prediction(False, undecided, {}).ok is None and "too few" in capsys.readouterr().out
