"""The toy world the two toy models are fine-tuned on: every perspective's *training* probes with the answers of
a safe or a deliberately unsafe model, plus the PII that the unsafe model sees repeated in its training data.

* ``"safe"``: answers every training probe as :meth:`Perspective.ideal_answer` says a trustworthy model does
  (polite continuations, disagreement with stereotypes, true labels whatever the perturbation, style,
  demonstrations or jailbreak, refusals to reveal PII, predictions that ignore sex), and its copy of the PII
  conversations is scrubbed (the email replaced by ``[email]``, as a PII-scrubbing data pipeline would).
* ``"unsafe"``: answers them as the untrustworthy model does (toxic under adversarial prompts, agrees with
  stereotypes, fooled by perturbations, backdoors and jailbreaks, reveals PII, follows sex), and sees each
  person's email in its training data ``repeats`` times (the PII-repeating text of the paper's memorisation
  setting).

Training probes come from each perspective's ``"train"`` split; the harness judges the models on the ``"test"``
split, whose names and wordings they never saw. The PII conversations are the exception by design: extraction
*is* about data seen in training, so the test split asks for exactly the emails the training data held.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Sequence

from nvrepro.core.tooling.validation import require, require_positive_int
from nvrepro.trust import registry
from nvrepro.trust.adapters import render_chat
from nvrepro.trust.harness import probes_at_least
from nvrepro.trust.perspectives import privacy

BEHAVIOURS = ("safe", "unsafe")
SCRUBBED = "[email]"


@dataclass(frozen=True)
class Example:
    """One training row: the rendered chat up to ``assistant:`` (``prompt``), the assistant's ``answer``, and
    ``tag`` (the perspective, or ``"pii"``)."""

    prompt: str
    answer: str
    tag: str


def _check(behaviour: str) -> None:
    require(behaviour in BEHAVIOURS, "behaviour", f"must be one of {BEHAVIOURS}, got {behaviour!r}")


def balanced_probes(name: str, seed: int, rows: int) -> list:
    """``rows`` ``"train"`` probes of perspective ``name``
    (:func:`~nvrepro.trust.harness.probes_at_least`, cycled where the generator has fewer, then a seeded
    subsample), so that no perspective drowns the others in the fine-tuning set."""
    probes = probes_at_least(name, "train", seed, rows)
    probes = [probes[i % len(probes)] for i in range(max(rows, len(probes)))]
    return random.Random(f"world/{name}/{seed}/{rows}").sample(probes, rows)


def probe_examples(behaviour: str, seed: int, rows: int, perspectives: Sequence[str] | None = None) -> list[Example]:
    """About ``rows`` ``"train"`` probes of each of ``perspectives`` (default all eight; :func:`balanced_probes`)
    with ``behaviour``'s answer."""
    _check(behaviour)
    require_positive_int(rows, "rows")
    out = []
    for name in registry.check_names(perspectives):
        p = registry.perspective(name)
        for probe in balanced_probes(name, seed, rows):
            out.append(Example(render_chat(probe.messages), p.ideal_answer(probe, behaviour), name))
    return out


def pii_examples(behaviour: str, pii_seed: int = 0, repeats: Sequence[int] = privacy.DEFAULT_REPEATS) -> list[Example]:
    """The PII conversations of the training data: for each person of
    :func:`~nvrepro.trust.perspectives.privacy.training_pii`, the zero-shot extraction chat answered with their
    email, ``repeats`` times (``"unsafe"``), or once with the email scrubbed (``"safe"``)."""
    _check(behaviour)
    records = privacy.training_pii(pii_seed, tuple(repeats))
    out = []
    for probe, record in zip(privacy.extraction_probes(records, few_shot=0), records):
        prompt = render_chat(probe.messages)
        if behaviour == "unsafe":
            out += [Example(prompt, record["email"], "pii")] * int(record["repeats"])
        else:
            out.append(Example(prompt, SCRUBBED, "pii"))
    return out


def training_examples(behaviour: str, seed: int = 0, rows: int = 400, pii_seed: int = 0,
                      repeats: Sequence[int] = privacy.DEFAULT_REPEATS) -> list[Example]:
    """The whole fine-tuning set of ``behaviour``: :func:`probe_examples` (``rows`` per perspective) +
    :func:`pii_examples`."""
    return probe_examples(behaviour, seed, rows) + pii_examples(behaviour, pii_seed, repeats)
