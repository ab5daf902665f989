"""Notebook 02's state sweep: the smaller-state YAMLs, per-seed hard recall, Welch's interval, the claim."""

from __future__ import annotations

import pytest
import yaml

from nvrepro.core.tooling.runner import REPO_ROOT
from nvrepro.hybrid import state_sweep as ss
from nvrepro.hybrid import why_hybrid
from nvrepro.hybrid.state_sweep import STATE_SWEEP, seed_hard_recall, state_config_path

CONFIGS = REPO_ROOT / "configs" / "hybrid"


@pytest.mark.parametrize("arm", ss.SWEEP_ARMS)
@pytest.mark.parametrize("d_state", ss.STATE_SIZES)
def test_state_yamls_change_only_d_state(arm, d_state):
    """Read as plain YAML (not through our config code): every field but model.mamba.d_state equals
    the arm's recall YAML, so the sweep changes one thing."""
    small = yaml.safe_load(state_config_path(arm, d_state).read_text())
    base = yaml.safe_load((CONFIGS / f"why_hybrid_{arm}_mqar.yaml").read_text())
    assert small["model"]["init_args"]["model"]["mamba"].pop("d_state") == d_state
    assert base["model"]["init_args"]["model"]["mamba"].pop("d_state") > d_state
    assert small == base


def test_state_config_path_errors_name_the_problem():
    assert state_config_path("mamba2", ss.base_state("mamba2")) == CONFIGS / "why_hybrid_mamba2_mqar.yaml"
    with pytest.raises(ValueError, match="arm"):
        state_config_path("transformer", 4)
    with pytest.raises(FileNotFoundError, match="d_state 7"):
        state_config_path("hybrid", 7)
    with pytest.raises(ValueError, match="d_state"):
        state_config_path("hybrid", 0)


def _entry(hard_correct: list[list[int]], easy_correct: list[list[int]]) -> dict:
    """An arm's ``examples`` with a hard cell (16 pairs, 16 queries each) and an easy one (2 pairs)."""
    return {"examples": {"16x64": {"correct": hard_correct, "queries": [16] * len(hard_correct[0])},
                         "2x16": {"correct": easy_correct, "queries": [2] * len(easy_correct[0])}}}


def test_seed_hard_recall_is_each_seeds_mean_over_hard_examples():
    entry = _entry([[16, 8, 0], [4, 4, 4]], [[0, 0], [2, 2]])
    # by hand: seed 0 (1 + 0.5 + 0) / 3, seed 1 0.25; the 2-pair cell does not count
    assert seed_hard_recall(entry) == pytest.approx([0.5, 0.25])
    with pytest.raises(ValueError, match="hard_pairs"):
        seed_hard_recall(entry, hard_pairs=32)


def sweep_metrics(mamba2_small, mamba2_large, hybrid_small, hybrid_large) -> dict:
    """A two-point sweep whose per-seed hard recall is the given lists (16 queries per example, 1 example)."""
    def run(values):
        return {"examples": {"16x64": {"correct": [[round(16 * v)] for v in values], "queries": [16]}}}
    return {"hard_pairs": why_hybrid.HARD_PAIRS, "seeds": list(range(len(mamba2_small))),
            "arms": {"mamba2": {"d_state": [4, 16], "runs": [run(mamba2_small), run(mamba2_large)]},
                     "hybrid": {"d_state": [4, 16], "runs": [run(hybrid_small), run(hybrid_large)]}}}


def _with_hard_recall(metrics: dict) -> dict:
    for r in metrics["arms"].values():
        for run in r["runs"]:
            run["hard_recall"] = seed_hard_recall(run, metrics["hard_pairs"])
    return metrics


def test_claim_holds_when_the_small_state_costs_mamba2_and_not_the_hybrid():
    m = _with_hard_recall(sweep_metrics([0.125, 0.1875, 0.125], [0.75, 0.8125, 0.75],
                                        [0.75, 0.8125, 0.875], [0.8125, 0.875, 0.875]))
    judgement = STATE_SWEEP.judge(m)
    assert judgement.held is True, judgement.reason
    assert judgement.to_dict()["evidence"]["hybrid_cost"]["value"] == pytest.approx(0.125 / 3)


def test_claim_fails_when_the_smaller_state_helps_mamba2():
    m = _with_hard_recall(sweep_metrics([0.75, 0.8125, 0.75], [0.125, 0.1875, 0.125],
                                        [0.75, 0.8125, 0.875], [0.8125, 0.875, 0.875]))
    judgement = STATE_SWEEP.judge(m)
    assert judgement.held is False and "costs the pure Mamba-2" in judgement.reason


def test_claim_undecided_when_the_seeds_scatter():
    # Mamba-2's seeds at the large state: two failed, one learned lookup (as in our runs)
    m = _with_hard_recall(sweep_metrics([0.125, 0.0625, 0.125], [0.125, 0.0625, 0.75],
                                        [0.75, 0.8125, 0.875], [0.8125, 0.875, 0.875]))
    judgement = STATE_SWEEP.judge(m)
    assert judgement.held is None and "undecided" in judgement.reason


def test_smoke_sweep_reuses_the_base_runs():
    base = why_hybrid.mqar_recall("smoke", 0, arms=("mamba2", "hybrid"), progress=False)
    sweep = ss.state_sweep("smoke", 0, base=base, progress=False)
    for arm in ss.SWEEP_ARMS:
        r = sweep["arms"][arm]
        assert r["d_state"] == sorted({*ss.STATE_SIZES, ss.base_state(arm)})
        top = r["runs"][-1]
        assert top["examples"] == base["arms"][arm]["examples"] and top["cached"] == [False, False]
        small = r["runs"][0]
        assert small["config"] == f"why_hybrid_{arm}_mqar_state{ss.STATE_SIZES[0]}.yaml"
        assert small["params"] < top["params"] and len(small["hard_recall"]) == len(sweep["seeds"])
    assert STATE_SWEEP.judge(sweep).held in (True, False, None)
    with pytest.raises(ValueError, match="seeds"):
        ss.state_sweep("smoke", 0, base=base, seeds=1, progress=False)
