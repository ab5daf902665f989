"""The DP-FL experiments' pieces that the smoke notebooks do not pin: the 2-D round against its
closed form, the claims' judges on hand-made results, calibration against the accountant, the
exercise checkers against right and wrong answers."""

import math

import numpy as np
import pytest

from nvrepro.fl import dp_experiment, exercises, public_experiment
from nvrepro.fl.accounting import epsilon
from nvrepro.fl.arms import calibrated_settings, spent_epsilon

BASE = dict(num_users=100, clients_per_round=10, rounds=20, eval_users=2, sentences_per_user=8)


def test_round_demo_clips_into_the_ball_and_the_noise_is_z_c_over_m():
    demo = dp_experiment.round_demo(num_clients=8, clip_norm=1.0, noise_multiplier=2.0, draws=4000, seed=1)
    norms = np.linalg.norm(demo["clipped"], axis=1)
    assert norms.max() <= 1.0 + 1e-12 and np.linalg.norm(demo["raw"], axis=1).max() > 1.5
    inside = np.linalg.norm(demo["raw"], axis=1) <= 1.0
    assert np.allclose(demo["clipped"][inside], demo["raw"][inside])
    assert np.allclose(demo["noisy"].mean(0), demo["mean"], atol=0.02)
    assert np.allclose(demo["noisy"].std(0), 2.0 * 1.0 / 8, rtol=0.05)


def test_calibrated_settings_spend_the_target_epsilon():
    s = calibrated_settings(BASE, 3.0, 1e-5)
    assert s.sampling == "poisson"
    assert spent_epsilon(s, 1e-5) <= 3.0 * (1 + 1e-6)
    assert epsilon(s.noise_multiplier * 0.98, 0.1, 20, 1e-5) > 3.0  # the smallest such z, not any
    assert calibrated_settings(BASE, None, 1e-5).noise_multiplier == 0 and math.isinf(
        spent_epsilon(calibrated_settings(BASE, None, 1e-5), 1e-5))
    assert spent_epsilon(s, 1e-5, runs=2) == pytest.approx(epsilon(s.noise_multiplier, 0.1, 40, 1e-5))


def _arm(losses, clients=10, max_norm=0.5):
    return {"user_loss": list(losses), "clients_per_round": clients, "max_norm": max_norm, "clip_norm": 0.5}


def test_more_clients_judge():
    rng = np.random.default_rng(0)
    base = rng.normal(3.0, 0.2, 30)
    metrics = {"epsilon": 4.0, "arms": {"fedavg": _arm(base - 0.3), "dp_many": _arm(base, 30),
                                        "dp_few": _arm(base + 0.2, 10)}}
    assert dp_experiment.MORE_CLIENTS.judge(metrics).held is True
    metrics["arms"]["dp_few"] = _arm(base - 0.2, 10)
    assert dp_experiment.MORE_CLIENTS.judge(metrics).held is False
    metrics["arms"]["dp_few"] = _arm(base + 0.2, 10, max_norm=0.51)  # a contribution above C
    assert dp_experiment.MORE_CLIENTS.judge(metrics).held is False


def _public_metrics(delta_pre=0.3, delta_tok=0.5, private_gap=0.01, delta_distil=0.05, matching_gap=0.0):
    rng = np.random.default_rng(1)
    base = rng.normal(2.5, 0.2, 40)
    arms = {}
    for eps in (None, 8.0, 2.0):
        name = public_experiment.eps_name(eps)
        arms[f"scratch_{name}"] = _arm(base)
        arms[f"public_{name}"] = _arm(base - delta_pre + rng.normal(0, 0.01, 40))
    arms["tok_public_bpe"] = _arm(base - delta_tok)
    arms["tok_private_bpe"] = _arm(base - delta_tok - private_gap)
    arms["distilled"] = _arm(arms["public_2"]["user_loss"] - np.full(40, delta_distil) + rng.normal(0, 0.01, 40))
    arms["matching_500"] = _arm(base - 0.4)
    arms["random_8000"] = _arm(base - 0.4 - matching_gap + rng.normal(0, 0.005, 40))
    return {"arms": arms, "epsilons": [None, 8.0, 2.0], "headline": 2.0, "budgets": [500, 2000, 8000]}


def test_public_data_judges():
    m = _public_metrics()
    for claim in (public_experiment.PRETRAINING, public_experiment.TOKENIZER, public_experiment.DISTILLATION,
                  public_experiment.MATCHING):
        assert claim.judge(m).held is True, claim.name
    assert public_experiment.PRETRAINING.judge(_public_metrics(delta_pre=-0.3)).held is False
    assert public_experiment.TOKENIZER.judge(_public_metrics(private_gap=0.3)).held is False
    assert public_experiment.TOKENIZER.judge(_public_metrics(delta_tok=-0.3)).held is False
    assert public_experiment.DISTILLATION.judge(_public_metrics(delta_distil=-0.1)).held is False
    assert public_experiment.MATCHING.judge(_public_metrics(matching_gap=0.2)).held is False


def test_sampler_steps_grow_with_the_data():
    p = public_experiment.plan("paper")
    few = public_experiment._sampler_steps(p, ["short sentence."] * 10)
    many = public_experiment._sampler_steps(p, ["a much longer sentence than that one, by far."] * 5000)
    assert few == p["sampler_min_steps"] and many > 5 * few


def test_clip_checker():
    from nvrepro.fl.clipping import clip_update

    assert exercises.check_clip(lambda u, c: clip_update(u, c)[0], verbose=False).ok is True

    def per_tensor(update, c):
        return [x * min(1.0, c / max(np.linalg.norm(x), 1e-12)) for x in update]

    assert exercises.check_clip(per_tensor, verbose=False).ok is False
    assert exercises.check_clip(lambda u, c: [x * 0 for x in u], verbose=False).ok is False

    def todo(u, c):
        raise NotImplementedError

    assert exercises.check_clip(todo, verbose=False).ok is None


def test_double_clients_checker():
    kw = dict(noise_multiplier=1.0, clients_per_round=50, population=1000, rounds=60, delta=1e-5, verbose=False)
    assert exercises.check_double_clients(epsilon(1.0, 0.1, 60, 1e-5), **kw).ok is True
    assert exercises.check_double_clients(epsilon(1.0, 0.05, 60, 1e-5), **kw).ok is False
    assert exercises.check_double_clients(None, **kw).ok is None


def test_select_checker():
    assert exercises.check_select(lambda s, b: list(np.argsort(s, kind="stable")[:b]), verbose=False).ok is True
    assert exercises.check_select(lambda s, b: list(np.argsort(-s, kind="stable")[:b]), verbose=False).ok is False

    def todo(s, b):
        raise NotImplementedError

    assert exercises.check_select(todo, verbose=False).ok is None


def test_private_tokens_prediction_checker():
    result = {"tokenizers": {"private": {"private_only_tokens": 12, "leaked_words": 3},
                             "public": {"private_only_tokens": 0, "leaked_words": 0}, "private_words": 90}}
    assert exercises.check_private_tokens_prediction(True, result, verbose=False).ok is True
    assert exercises.check_private_tokens_prediction(False, result, verbose=False).ok is False
    assert exercises.check_private_tokens_prediction(None, result, verbose=False).ok is None


def test_plans_name_an_unknown_profile():
    from nvrepro.core.tooling.validation import ConfigError

    for module in (dp_experiment, public_experiment):
        with pytest.raises(ConfigError, match="profile"):
            module.plan("huge")
