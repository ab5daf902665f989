"""FOCUS notebooks' judges and exercise checkers, on hand-made metrics and answers."""

import numpy as np
import pytest

from nvrepro.core.tooling.claims import find_claim
from nvrepro.fl.focus import exercises, linear_experiment, tasks_experiment
from nvrepro.fl.focus.compare import judge_fairer


def _methods(focus_faa, fedavg_faa, focus_acc, fedavg_acc):
    return {"focus": {"faa": focus_faa, "benign_accuracy": focus_acc},
            "fedavg": {"faa": fedavg_faa, "benign_accuracy": fedavg_acc}}


def test_judge_fairer_three_ways():
    held = judge_fairer(_methods([0.1, 0.2, 0.15, 0.1], [1.0, 1.1, 0.9, 1.2], [0.9, 0.91, 0.9, 0.92],
                                 [0.9, 0.9, 0.9, 0.9]), utility="benign_accuracy", margin=0.02, higher_is_better=True)
    assert held.held is True
    worse_acc = judge_fairer(_methods([0.1, 0.2, 0.15, 0.1], [1.0, 1.1, 0.9, 1.2], [0.5, 0.52, 0.5, 0.51],
                                      [0.9, 0.9, 0.9, 0.9]), utility="benign_accuracy", margin=0.02,
                             higher_is_better=True)
    assert worse_acc.held is False and "utility" in worse_acc.reason
    mixed = judge_fairer(_methods([0.5, 1.5, 0.2, 1.3], [1.0, 1.0, 1.0, 1.0], [0.9] * 4, [0.9] * 4),
                         utility="benign_accuracy", margin=0.02, higher_is_better=True)
    assert mixed.held is None
    one_seed = judge_fairer(_methods([0.1], [1.0], [0.9], [0.9]), utility="benign_accuracy", margin=0.02,
                            higher_is_better=True)
    assert one_seed.held is None


def test_sweep_judges():
    metrics = {"groups": 3, "sweep_k": {1: {"faa": [2.0, 2.1, 1.9]}, 3: {"faa": [0.2, 0.3, 0.25]}},
               "sweep_noisy": {0: {"focus": {"faa": [0.1, 0.2, 0.1]}, "fedavg": {"faa": [1.0, 1.0, 1.1]}},
                               4: {"focus": {"faa": [0.1, 0.2, 0.1]}, "fedavg": {"faa": [0.1, 0.2, 0.1]}}}}
    assert linear_experiment.SWEEP_K.judge(metrics).held is True
    noisy = linear_experiment.SWEEP_NOISY.judge(metrics)
    assert noisy.held is None and "noisy 4" in noisy.reason


def test_claims_are_module_level():
    for claim in (linear_experiment.LINEAR, linear_experiment.SWEEP_K, linear_experiment.SWEEP_NOISY,
                  tasks_experiment.DIGITS, tasks_experiment.TEXT):
        assert find_claim(claim.claim_id) is claim  # a sidecar can be re-judged


def test_faa_checker():
    assert exercises.check_faa(lambda l, o: float(np.max(l - o) - np.min(l - o)), verbose=False).ok is True
    wrong = exercises.check_faa(lambda l, o: float(np.max(l) - np.min(l)), verbose=False)
    assert wrong.ok is False and "optimal" in wrong.message

    def todo(l, o):
        raise NotImplementedError

    assert exercises.check_faa(todo, verbose=False).ok is None


def test_e_step_checker():
    def good(losses, prior):
        z = np.log(prior)[None] - losses
        z -= z.max(1, keepdims=True)
        r = np.exp(z)
        return r / r.sum(1, keepdims=True)

    def naive(losses, prior):
        r = prior[None] * np.exp(-losses)
        return r / r.sum(1, keepdims=True)

    assert exercises.check_e_step(good, verbose=False).ok is True
    bad = exercises.check_e_step(naive, verbose=False)
    assert bad.ok is False and "max" in bad.message


def test_hard_assign_checker():
    def good(losses):
        out = np.zeros_like(losses)
        out[np.arange(len(losses)), losses.argmin(1)] = 1
        return out

    def highest(losses):
        out = np.zeros_like(losses)
        out[np.arange(len(losses)), losses.argmax(1)] = 1
        return out

    assert exercises.check_hard_assign(good, verbose=False).ok is True
    bad = exercises.check_hard_assign(highest, verbose=False)
    assert bad.ok is False and "LOWEST" in bad.message


@pytest.mark.parametrize("prediction,ok", [(True, True), (False, False), (None, None)])
def test_noisy_prediction(prediction, ok):
    result = {"sweep_noisy": {0: {"fedavg": {"faa": [1.0, 1.2]}, "focus": {"faa": [0.1, 0.1]}},
                              8: {"fedavg": {"faa": [3.0, 3.2]}, "focus": {"faa": [0.2, 0.1]}}}}
    assert exercises.check_noisy_prediction(prediction, result, verbose=False).ok is ok


def test_best_text_method():
    result = {"text": {"methods": {"focus": {"benign_accuracy": [0.3, 0.31]},
                                   "fedavg": {"benign_accuracy": [0.2, 0.22]}}}}
    assert exercises.check_best_text_method("focus", result, verbose=False).ok is True
    assert exercises.check_best_text_method("fedavg", result, verbose=False).ok is False
    assert exercises.check_best_text_method("speech", result, verbose=False).ok is False
