"""The status of record re-judged: every committed sidecar's claim, decided again from the
sidecar's own metrics by the Claim object in the code, must give the recorded verdict.

So a threshold changed in code without a new paper run, a claim text edited in one place only,
or a sidecar edited by hand fails here. (The numbers themselves are not re-measured: that is
``make reproduce``.)
"""

from __future__ import annotations

import json

import pytest

from nvrepro.core.tooling.claims import find_claim
from nvrepro.core.tooling.paths import FIGURES_DIR

SIDECARS = sorted(FIGURES_DIR.glob("*/*.json"))


def test_there_are_figures_of_record():
    assert SIDECARS, f"no sidecars under {FIGURES_DIR}"


@pytest.mark.parametrize("path", SIDECARS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_sidecar_verdict_follows_from_its_metrics(path):
    sidecar = json.loads(path.read_text())
    assert sidecar["profile"] == "paper", "figures/ holds paper-profile runs only"
    assert path.with_suffix(".png").is_file()
    if sidecar["claim"] is None:
        assert sidecar["held"] is None
        return
    assert sidecar.get("claim_id"), ("the sidecar names no Claim object (written before claims were "
                                     "objects?); regenerate it with `make reproduce`")
    claim = find_claim(sidecar["claim_id"])
    assert claim.name == sidecar["name"] == path.stem
    assert claim.text == sidecar["claim"], "the claim's text in the code differs from the sidecar's"
    judgement = claim.judge(sidecar["metrics"])
    assert judgement.held == sidecar["held"], judgement.reason
    assert judgement.to_dict() == sidecar["judgement"]
