"""Long-context probes: deterministic, exact length, and answers that an independent reader of
the prompt text recovers; the scorers give 100% to such a reader and to the oracle."""

import re
from collections import Counter

import pytest

from nvrepro.core.lm.config import ConfigError
from nvrepro.core.data import ByteTokenizer
from nvrepro.ultralong.evaluate import exact_match, niah_grid, oracle_predictor, ruler_scores, score
from nvrepro.ultralong.tasks import TASKS, make_examples

TOK = ByteTokenizer()


# --- independent readers: regular expressions over the decoded prompt ------------------------

def read_passkey(text: str) -> str:
    assert text.endswith("The pass key is #") and text.count("#") == 3  # the marker: needle twice + question
    return re.search(r"The pass key is #(\d+)\. Remember it\. #\1 is the pass key\.", text).group(1)


def read_multikey(text: str) -> str:
    key, marker = re.search(r"What is the special magic number for (\w+)\? .* is (\W)$", text).groups()
    found = {k: (m, v) for k, m, v in re.findall(r"The special magic number for (\w+) is (\W)(\d+)\. ", text)}
    assert found[key][0] == marker and text.count(marker) == 2  # the marker is unique to its needle
    return found[key][1]


def read_variable_tracking(text: str) -> str:
    value = re.search(r"assigned the value (\d+) in the text above", text).group(1)
    direct = {m.group(1): m.group(2) for m in re.finditer(r"VAR ([A-Z]+) = (\d+)\. ", text)}
    links = {m.group(1): m.group(2) for m in re.finditer(r"VAR ([A-Z]+) = VAR ([A-Z]+)\. ", text)}
    order = [m.group(1) for m in re.finditer(r"VAR ([A-Z]+) = ", text)]

    def resolve(name):
        while name in links:
            name = links[name]
        return direct.get(name)

    return " ".join(v for v in order if resolve(v) == value)


def read_common_words(text: str) -> str:
    k = int(re.search(r"What are the (\d+) most common words", text).group(1))
    body = text.split("appear more often than the others.\n", 1)[1].split("\nWhat are the", 1)[0]
    counts = Counter(body.split())
    top = counts.most_common()
    assert top[k - 1][1] > top[k][1], "the k-th and (k+1)-th counts must differ"
    return " ".join(w for w, _ in top[:k])


READERS = {"passkey": read_passkey, "multikey": read_multikey,
           "variable_tracking": read_variable_tracking, "common_words": read_common_words}


def reader_predictor(task):
    return lambda prompt_ids, n: TOK.encode(READERS[task](TOK.decode(prompt_ids)))[:n]


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("length", [512, 1000, 4096])
def test_examples_have_exact_length_and_readable_answers(task, length):
    examples = make_examples(task, length, num_examples=4, seed=1)
    for e in examples:
        assert e.length == length and e.task == task
        assert TOK.decode(e.answer_ids) == e.answer
        assert READERS[task](TOK.decode(e.prompt_ids)) == e.answer
    assert score(examples, reader_predictor(task)) == 1.0


@pytest.mark.parametrize("task", TASKS)
def test_generators_are_deterministic(task):
    a = make_examples(task, 700, 3, seed=5)
    assert a == make_examples(task, 700, 3, seed=5)
    assert a != make_examples(task, 700, 3, seed=6)
    assert len({tuple(e.prompt_ids) for e in a}) == 3  # the examples differ from each other


def test_common_word_counts_are_distinct_and_dominant():
    e = make_examples("common_words", 2000, 1, seed=0, num_common=4, freq_common=5, freq_uncommon=2)[0]
    counts = sorted(e.meta["counts"].values(), reverse=True)
    assert counts == [8, 7, 6, 5]
    body = Counter(TOK.decode(e.prompt_ids).split("others.\n", 1)[1].split("\nWhat", 1)[0].split())
    assert max(n for w, n in body.items() if w not in e.meta["counts"]) == 2


def test_too_short_contexts_are_rejected_with_the_field_named():
    with pytest.raises(ConfigError, match="length"):
        make_examples("multikey", 100, 1)
    with pytest.raises(ConfigError, match="task"):
        make_examples("needle", 1000, 1)


def test_scorers_give_the_oracle_100_percent_and_a_wrong_answer_0():
    examples = [e for t in TASKS for e in make_examples(t, 600, 3, seed=2)]
    assert score(examples, oracle_predictor(examples)) == 1.0
    assert score(examples, lambda p, n: [0] * n) == 0.0
    e = examples[0]
    assert exact_match(e, e.answer_ids + [1, 2]) and not exact_match(e, e.answer_ids[:-1])


def test_grid_and_ruler_scores_with_independent_readers():
    grid = niah_grid(reader_predictor("passkey"), lengths=[300, 900], depths=[0.0, 0.5, 1.0],
                     num_samples=2, progress=False)
    assert grid["accuracy"] == [[1.0, 1.0]] * 3 and grid["mean"] == 1.0

    def read_any(prompt_ids, n):
        text = TOK.decode(prompt_ids)
        task = ("multikey" if "special magic" in text else "variable_tracking" if "VAR " in text
                else "common_words")
        return TOK.encode(READERS[task](text))[:n]

    out = ruler_scores(read_any, lengths=[600, 1500], num_samples=2, progress=False)
    assert out["average"] == [1.0, 1.0] and set(out["tasks"]) == {"multikey", "variable_tracking", "common_words"}
    assert out["samples"] == 2 and all(c == [2, 2] for c in out["correct"].values())


def test_grid_and_ruler_count_the_probes_answered():
    """A reader that answers only every other probe: one of the two probes per cell / task and length."""
    calls = []

    def every_other(task):
        def predict(prompt_ids, n):
            calls.append(1)
            return reader_predictor(task)(prompt_ids, n) if len(calls) % 2 else [0] * n
        return predict

    grid = niah_grid(every_other("passkey"), lengths=[300, 900], depths=[0.0, 1.0], num_samples=2, progress=False)
    assert grid["samples"] == 2 and grid["correct"] == [[1, 1], [1, 1]] and grid["accuracy"] == [[0.5, 0.5]] * 2
    out = ruler_scores(every_other("multikey"), lengths=[600], tasks=["multikey"], num_samples=2, progress=False)
    assert out["correct"] == {"multikey": [1]} and out["tasks"] == {"multikey": [0.5]}


def test_marker_bytes_occur_nowhere_but_before_the_values():
    from nvrepro.core.data.synthetic import PASSKEY_FILLER, PASSKEY_INTRO
    from nvrepro.ultralong.tasks import MARKERS, MULTIKEY_INTRO

    assert len(set(MARKERS)) == len(MARKERS)
    assert not set(MARKERS) & set(PASSKEY_FILLER + PASSKEY_INTRO + MULTIKEY_INTRO)
    for e in make_examples("multikey", 900, 4, seed=3, num_keys=6):
        text = TOK.decode(e.prompt_ids)
        marker = text[-1]
        assert marker in MARKERS and text.index(marker) + 1 == text.index(e.answer)  # marker, then value
        assert sum(text.count(m) for m in MARKERS) == 6 + 1  # one per needle, one in the question


# --- a subword tokenizer: answers spelled as the prompt spells the same words -------------------

@pytest.fixture(scope="module")
def bpe():
    from nvrepro.core.data.corpus import load_corpus
    from nvrepro.core.data.tokenizers import train_bpe_tokenizer

    return train_bpe_tokenizer(load_corpus("web_bible", max_documents=120), 600)


def _contains(ids: list[int], part: list[int]) -> bool:
    return any(ids[i:i + len(part)] == part for i in range(len(ids) - len(part) + 1))


@pytest.mark.parametrize("task", TASKS)
def test_bpe_answers_use_the_prompts_spelling(task, bpe):
    for e in make_examples(task, 400, 4, seed=2, tokenizer=bpe):
        assert e.length == 400
        assert READERS[task](bpe.decode(e.prompt_ids)) == e.answer  # the text is intact
        assert bpe.decode(e.prompt_ids + e.answer_ids).endswith(e.answer)
        if task in ("variable_tracking", "common_words"):
            # Each answer word with its space in front, encoded on its own, is how the words
            # read inside the prompt; the text ends with those spellings in a row, and only a
            # lone space token in front of the first word may sit in the prompt.
            words = [bpe.encode(" " + w) for w in e.answer.split()]
            spelled = [t for w in words for t in w]
            assert (e.prompt_ids + e.answer_ids)[-len(spelled):] == spelled
            assert len(e.answer_ids) == len(spelled) or (len(e.answer_ids) == len(spelled) - 1
                                                         and bpe.decode(spelled[:1]) == " ")
            assert all(_contains(e.prompt_ids, w) for w in words)
