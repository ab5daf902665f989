"""InstructRetro / RETRO++ claims on hand-made exact-match vectors, and the exercises' truths."""

import numpy as np

from nvrepro.retro import instruct
from nvrepro.retro.instruct_exercises import check_ablation_prediction, check_answer_path, check_retrofit_equivalence


def metrics(**em):
    n = len(next(iter(em.values())))
    return {"em": {k: list(v) for k, v in em.items()}, "attributes": ["city"] * n, "questions": ["q"] * n}


def test_claims_follow_paired_intervals():
    rng = np.random.default_rng(0)
    good = (rng.random(200) < 0.8).astype(float)
    weak = good * (rng.random(200) < 0.5)
    m = metrics(instructretro=good, instructretro_decoder=good, retro=weak, gpt=weak)
    assert instruct.RETRO_PLUS_PLUS.judge(m).held is True
    assert instruct.INSTRUCT.judge(m).held is True
    assert instruct.ENCODER_ABLATION.judge(m).held is True  # identical answers: gap 0
    m = metrics(instructretro=weak, instructretro_decoder=good * 0, retro=good, gpt=good)
    assert instruct.RETRO_PLUS_PLUS.judge(m).held is False and instruct.INSTRUCT.judge(m).held is False
    assert instruct.ENCODER_ABLATION.judge(m).held is False  # the decoder alone loses ~40 points
    nothing = np.zeros(200)
    assert instruct.ENCODER_ABLATION.judge(metrics(instructretro=nothing, instructretro_decoder=nothing, retro=nothing,
                                                   gpt=nothing)).held is False


def test_exercise_truths(capsys):
    assert check_answer_path("C").ok is True and check_answer_path("*").ok is False
    assert check_retrofit_equivalence(True).ok is True
    assert check_ablation_prediction(None, {}).ok is None
