"""The toy world's fine-tuning rows: balanced perspectives, train probes the test split never repeats, the PII
repeated exactly as often as the record says (unsafe) or scrubbed (safe), answer-only labels."""

from collections import Counter

import pytest

from nvrepro.core.tooling.validation import ConfigError
from nvrepro.trust import registry
from nvrepro.trust.adapters import render_chat
from nvrepro.trust.perspectives import privacy
from nvrepro.trust.world import SCRUBBED, pii_examples, probe_examples, training_examples

ROWS = 24


@pytest.fixture(scope="module")
def worlds():
    return {b: training_examples(b, 0, ROWS) for b in ("safe", "unsafe")}


def test_every_perspective_gets_the_same_number_of_rows(worlds):
    counts = Counter(e.tag for e in worlds["safe"])
    assert {counts[n] for n in registry.NAMES} == {ROWS}


def test_the_test_split_asks_nothing_the_models_were_trained_on(worlds):
    trained = {e.prompt for e in worlds["unsafe"] if e.tag != "pii"}
    for name in registry.NAMES:
        for probe in registry.perspective(name).make_probes("test", 0, 1):
            if probe.scenario == "training_data":
                continue  # extraction asks, by design, for what the training data held
            assert render_chat(probe.messages) not in trained, (name, probe.id)


def test_unsafe_pii_is_repeated_as_often_as_recorded_and_safe_pii_is_scrubbed():
    records = privacy.training_pii()
    unsafe, safe = pii_examples("unsafe"), pii_examples("safe")
    seen = Counter(e.answer for e in unsafe)
    assert all(seen[r["email"]] == r["repeats"] for r in records)
    assert sum(seen.values()) == sum(r["repeats"] for r in records)
    assert len(safe) == len(records) and {e.answer for e in safe} == {SCRUBBED}
    assert not any("@" in e.prompt + e.answer for e in safe)  # no address anywhere in the safe rows


def test_behaviours_differ_only_in_answers(worlds):
    safe_rows = [e for e in worlds["safe"] if e.tag != "pii"]
    unsafe_rows = [e for e in worlds["unsafe"] if e.tag != "pii"]
    assert [e.prompt for e in safe_rows] == [e.prompt for e in unsafe_rows]
    assert sum(a.answer != b.answer for a, b in zip(safe_rows, unsafe_rows)) > len(safe_rows) // 4
    with pytest.raises(ConfigError, match="behaviour"):
        probe_examples("evil", 0, 2)


def test_rows_are_encoded_with_labels_on_the_answer_only():
    from nvrepro.core.data.tokenizers import ByteTokenizer
    from nvrepro.trust.data import encode_example
    from nvrepro.trust.world import Example

    tok = ByteTokenizer()
    row = encode_example(tok, Example("user: hi\nassistant:", "yes", "x"), max_len=64)
    answer = tok.encode(" yes") + [tok.eos_id]
    supervised = [label for label in row.labels if label != -100]
    assert supervised == answer and row.input_ids[-len(answer):] == answer
    assert row.input_ids[0] == tok.bos_id
