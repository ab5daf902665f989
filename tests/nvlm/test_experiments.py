"""The NVLM claims judged on metrics whose answer is known by construction, and the exercise checkers."""

import random

import torch

from nvrepro.core.vision.tiling import choose_grid
from nvrepro.nvlm import architecture_experiment as arch_exp
from nvrepro.nvlm import exercises
from nvrepro.nvlm import retention_experiment as ret_exp
from nvrepro.nvlm import tile_tag_experiment as tag_exp
from nvrepro.nvlm.evaluation import exact_match


def _runs(p: float, n: int = 200, seeds: int = 2, offset: int = 0):
    rng = random.Random(offset)
    return [[float(rng.random() < p) for _ in range(n)] for _ in range(seeds)]


def _tag_metrics(p: dict) -> dict:
    return {"arms": {arm: {"correct": _runs(p[arm], offset=i), "by_kind": [{}, {}]}
                     for i, arm in enumerate(tag_exp.ARMS)}, "kinds": ["ocr"] * 200, "seeds": [0, 1]}


def test_tile_tag_claim_follows_the_ordering():
    held = _tag_metrics({"low_res": 0.1, "none": 0.5, "1d": 0.9, "2d_grid": 0.7, "2d_bbox": 0.7})
    assert tag_exp.TILE_TAGS.judge(held).held is True
    reversed_ = _tag_metrics({"low_res": 0.1, "none": 0.9, "1d": 0.4, "2d_grid": 0.7, "2d_bbox": 0.7})
    assert tag_exp.TILE_TAGS.judge(reversed_).held is False
    tie = _tag_metrics({"low_res": 0.1, "none": 0.5, "1d": 0.5, "2d_grid": 0.5, "2d_bbox": 0.5})
    tie["arms"]["1d"]["correct"] = tie["arms"]["none"]["correct"]
    assert tag_exp.TILE_TAGS.judge(tie).held is None
    assert "OCRBench" in tag_exp.summary_table(held)


def _arch_metrics(rates: dict, acc: dict) -> dict:
    return {"arms": {a: {"correct": _runs(acc[a], offset=i), "by_kind": [{}, {}]} for i, a in enumerate("DXH")},
            "samples_per_s": rates, "ratios": {a: 1.0 for a in "DXH"}, "sequence_length": {a: 1.0 for a in "DXH"},
            "seeds": [0, 1], "kinds": ["ocr"] * 200}


def test_throughput_claim_needs_x_over_h_over_d():
    fast = {"X": [50, 51, 52, 53, 54], "H": [36, 37, 38, 35, 36], "D": [28, 29, 27, 28, 30]}
    acc = {"D": 0.8, "X": 0.3, "H": 0.5}
    assert arch_exp.THROUGHPUT.judge(_arch_metrics(fast, acc)).held is True
    swapped = dict(fast, D=fast["X"], X=fast["D"])
    assert arch_exp.THROUGHPUT.judge(_arch_metrics(swapped, acc)).held is False
    assert arch_exp.OCR.judge(_arch_metrics(fast, acc)).held is True
    assert arch_exp.OCR.judge(_arch_metrics(fast, {"D": 0.2, "X": 0.8, "H": 0.5})).held is False


def test_retention_claim_parts():
    def metrics(before, forms_only, blend):
        return {"text": {"before": _runs(before, offset=1), "forms_only": _runs(forms_only, offset=2),
                         "text_blend": _runs(blend, offset=3)},
                "forms": {"forms_only": _runs(0.5), "text_blend": _runs(0.5)}, "seeds": [0, 1]}

    assert ret_exp.RETENTION.judge(metrics(0.9, 0.3, 0.85)).held is True
    assert ret_exp.RETENTION.judge(metrics(0.9, 0.9, 0.3)).held is False
    assert "forms" in ret_exp.summary_table(metrics(0.9, 0.3, 0.85))


def test_exercise_checkers_accept_the_truth_and_reject_slips():
    assert exercises.check_choose_grid(choose_grid, verbose=False)
    assert not exercises.check_choose_grid(lambda w, h, t, m: (1, 1), verbose=False)
    assert exercises.check_choose_grid(lambda *a: (_ for _ in ()).throw(NotImplementedError()), verbose=False).ok is None
    assert exercises.check_decoder_tokens(1280, verbose=False)  # 1000 x 250: 4 x 1 + thumbnail
    assert not exercises.check_decoder_tokens(1024, verbose=False)
    assert exercises.check_hybrid_sequence(1280, verbose=False) and not exercises.check_hybrid_sequence(2816, verbose=False)
    assert exercises.check_exact_match(exact_match, verbose=False)
    assert not exercises.check_exact_match(lambda lg, lb: (lg.argmax(-1) == lb).all(-1), verbose=False)
    m = _arch_metrics({"X": [50.0], "H": [45.0], "D": [20.0]}, {"D": 0.5, "X": 0.5, "H": 0.5})
    assert exercises.check_hybrid_speed("X", m, verbose=False) and not exercises.check_hybrid_speed("D", m, verbose=False)
    tags = _tag_metrics({"low_res": 0.1, "none": 0.5, "1d": 0.9, "2d_grid": 0.2, "2d_bbox": 0.8})
    assert exercises.check_best_2d_variant("2d_bbox", tags, verbose=False)
    forgot = {"text_by_kind": {"before": [{"text:add": 0.9, "text:sort": 0.9}],
                               "forms_only": [{"text:add": 0.2, "text:sort": 0.8}]}}
    assert exercises.check_most_forgotten("add", forgot, verbose=False)
    assert not exercises.check_most_forgotten("sort", forgot, verbose=False)
    assert torch.is_tensor(exact_match(torch.zeros(1, 2, 3), torch.tensor([[-100, 1]])))


def test_the_explorer_describes_the_papers_six_tiles():
    from nvrepro.nvlm.explorer import describe_tiling

    text = describe_tiling(1344, 896, 6)
    assert "grid 3 x 2" in text and "+ thumbnail" in text and "<tile_global_thumbnail>" in text
    assert "NVLM-D: 1,792 in the decoder" in text and "NVLM-H:   256 in the decoder, 1,536" in text
    one = describe_tiling(448, 448, 6)
    assert "no thumbnail" in one and "NVLM-H:   256 in the decoder,     0" in one
