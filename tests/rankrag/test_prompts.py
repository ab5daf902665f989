"""The one RankRAG prompt format, on hand-made cases."""

import pytest

from nvrepro.rankrag.prompts import (
    IRRELEVANT,
    NONE_RELEVANT,
    RELEVANT,
    listwise_answer,
    listwise_ranking_question,
    ranking_question,
    render_prompt,
    target_text,
)


def test_render_with_context_numbers_the_passages_from_one():
    prompt = render_prompt("Where was Ann Lee born?", ["Ann Lee was born in Oslo. ", "  Bo Ek likes chess."])
    assert prompt == ("Passage 1: Ann Lee was born in Oslo.\n"
                      "Passage 2: Bo Ek likes chess.\n"
                      "Question: Where was Ann Lee born?\n"
                      "Answer:")


def test_render_without_context_is_question_and_answer_lines():
    assert render_prompt(" What comes after Monday? ") == "Question: What comes after Monday?\nAnswer:"
    assert render_prompt("Hi?", []) == render_prompt("Hi?")


def test_render_refuses_a_single_string_as_context():
    with pytest.raises(TypeError, match="context"):
        render_prompt("Q?", "one passage")


def test_target_is_the_answer_after_one_space():
    assert target_text("  Oslo ") == " Oslo"


def test_ranking_questions_wrap_the_question():
    assert ranking_question("Where was Ann Lee born?") == "Is the passage relevant to: Where was Ann Lee born?"
    assert listwise_ranking_question("Q?") == "Which passages are relevant to: Q?"
    assert (RELEVANT, IRRELEVANT) == ("True", "False")


def test_listwise_answer_sorts_numbers_and_names_none():
    assert listwise_answer([3, 1]) == "1 3"
    assert listwise_answer((2,)) == "2"
    assert listwise_answer([]) == NONE_RELEVANT == "none"


def test_listwise_answer_rejects_numbers_below_one():
    with pytest.raises(ValueError, match="relevant"):
        listwise_answer([0, 2])
