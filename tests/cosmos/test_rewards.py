"""Cosmos-Reason1's rule-based rewards: the format reward on well- and ill-formed responses, the answer
parser, the accuracy reward, their weighted sum and the errors. Every expected value is written out by hand."""

from __future__ import annotations

import pytest
import torch

from nvrepro.cosmos.rewards import accuracy_reward, format_reward, parse_answer, rewards, total_reward

WELL_FORMED = [
    "<think>The cup is on the left.</think><answer>A</answer>",
    "<think>x</think>\n\n<answer>\nD\n</answer>",  # whitespace between the blocks and around the letter
    "<think>multi\nline\nreasoning</think> <answer> C </answer>",
    "<think> spaces around are fine </think>\t<answer>B</answer>",
    "<think>mentions <b>html</b> and a < b</think><answer>Z</answer>",  # other tags or '<' are plain text
]

ILL_FORMED = {
    "no tags": "A",
    "answer only": "<answer>A</answer>",
    "think only": "<think>because</think>",
    "empty think": "<think></think><answer>A</answer>",
    "whitespace-only think": "<think> \n </think><answer>A</answer>",
    "text before": "Sure! <think>r</think><answer>A</answer>",
    "leading newline": "\n<think>r</think><answer>A</answer>",
    "text after": "<think>r</think><answer>A</answer> because",
    "trailing newline": "<think>r</think><answer>A</answer>\n",
    "text between blocks": "<think>r</think> so <answer>A</answer>",
    "two answers": "<think>r</think><answer>A</answer><answer>B</answer>",
    "wrong order": "<answer>A</answer><think>r</think>",
    "lowercase letter": "<think>r</think><answer>a</answer>",
    "two letters": "<think>r</think><answer>AB</answer>",
    "letter with text": "<think>r</think><answer>A) the cup</answer>",
    "empty answer": "<think>r</think><answer></answer>",
    "nested think": "<think>a <think>b</think> c</think><answer>A</answer>",
    "answer inside think": "<think>r <answer>B</answer></think><answer>A</answer>",
    "unclosed think": "<think>r<answer>A</answer>",
    "unclosed answer": "<think>r</think><answer>A",
    "uppercase tag": "<THINK>r</THINK><ANSWER>A</ANSWER>",
}


@pytest.mark.parametrize("text", WELL_FORMED)
def test_format_reward_accepts_the_papers_layout(text):
    assert format_reward(text) == 1.0


@pytest.mark.parametrize("text", ILL_FORMED.values(), ids=ILL_FORMED.keys())
def test_format_reward_rejects_everything_else(text):
    assert format_reward(text) == 0.0


def test_parse_answer_reads_the_single_answer_block():
    assert [parse_answer(t) for t in WELL_FORMED] == ["A", "D", "C", "B", "Z"]
    # The answer is read on its own: a missing reasoning block or trailing text costs the format reward only.
    assert parse_answer("<answer>B</answer>") == "B"
    assert parse_answer("<think>r</think><answer> C </answer> trailing") == "C"
    for key in ("no tags", "think only", "two answers", "lowercase letter", "two letters", "letter with text",
                "empty answer", "unclosed answer", "uppercase tag"):
        assert parse_answer(ILL_FORMED[key]) is None, key
    assert parse_answer("</answer>A<answer>") is None  # closing tag first
    assert parse_answer("<answer>A</answer></answer>") is None  # a stray second tag


def test_accuracy_reward_compares_the_letter():
    assert accuracy_reward("<think>r</think><answer>B</answer>", "B") == 1.0
    assert accuracy_reward("<think>r</think><answer>B</answer>", "C") == 0.0
    assert accuracy_reward("<answer> B </answer>", "B") == 1.0  # ill-formed but correct
    assert accuracy_reward("<think>r</think><answer>b</answer>", "B") == 0.0  # no case folding
    assert accuracy_reward("B", "B") == 0.0  # no answer block, no credit


def test_total_reward_is_the_weighted_sum():
    good_right = "<think>r</think><answer>A</answer>"
    good_wrong = "<think>r</think><answer>B</answer>"
    bad_right = "<answer>A</answer>"
    bad_none = "A"
    assert [total_reward(t, "A") for t in (good_right, good_wrong, bad_right, bad_none)] == [2.0, 1.0, 1.0, 0.0]
    assert total_reward(good_right, "A", accuracy_weight=2.0, format_weight=0.5) == 2.5
    assert total_reward(good_wrong, "A", accuracy_weight=2.0, format_weight=0.5) == 0.5
    assert total_reward(bad_right, "A", accuracy_weight=2.0, format_weight=0.5) == 2.0


def test_rewards_vectorises_in_order():
    texts = ["<think>r</think><answer>A</answer>", "<answer>A</answer>", "nope", "<think>r</think><answer>C</answer>"]
    out = rewards(texts, ["A", "A", "A", "B"], accuracy_weight=3.0)
    assert out.dtype == torch.float32 and out.shape == (4,)
    assert out.tolist() == [4.0, 3.0, 0.0, 1.0]
    assert rewards([], []).shape == (0,)


def test_errors_name_the_bad_argument():
    good = "<think>r</think><answer>A</answer>"
    for bad_correct in ("a", "AB", "", "1", None, 1):
        with pytest.raises(ValueError, match="correct"):
            accuracy_reward(good, bad_correct)
    with pytest.raises(ValueError, match="text"):
        format_reward(None)
    with pytest.raises(ValueError, match="text"):
        parse_answer(b"<answer>A</answer>")
    with pytest.raises(ValueError, match="same length.*3 and 2"):
        rewards([good] * 3, ["A", "A"])
    with pytest.raises(ValueError, match="single str"):
        rewards(good, "A")
    with pytest.raises(ValueError, match="format_weight"):
        total_reward(good, "A", format_weight=float("nan"))
    with pytest.raises(ValueError, match="accuracy_weight"):
        rewards([good], ["A"], accuracy_weight="1")
