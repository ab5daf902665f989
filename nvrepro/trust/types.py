"""The harness's shared vocabulary: messages, probes, generation settings, the model-adapter interface,
and what a perspective returns.

A *probe* is one chat (system + user messages, in DecodingTrust's formats) sent to a model; the model answers
it ``settings.num_samples`` times; a perspective turns the answers of all its probes into the paper's metrics
and one 0-100 score (higher = more trustworthy).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Protocol, Sequence

from nvrepro.core.tooling.validation import ConfigError

ROLES = ("system", "user", "assistant")


@dataclass(frozen=True)
class Message:
    """One chat turn: ``role`` in :data:`ROLES`, ``content`` its text."""

    role: str
    content: str

    def __post_init__(self):
        if self.role not in ROLES:
            raise ConfigError(f"message.role: {self.role!r} is not one of {', '.join(ROLES)}")

    def to_dict(self) -> dict[str, str]:
        return {"role": self.role, "content": self.content}


@dataclass(frozen=True)
class Probe:
    """One chat sent to the model under test.

    ``perspective``: the perspective's name; ``id``: unique within the perspective (stable across runs: it is
    part of the cache key); ``scenario``: the sub-setting the metric is broken down by (e.g. ``"benign"`` /
    ``"adversarial"`` system prompt, ``"clean"`` / ``"perturbed"`` input); ``messages``: the chat;
    ``target``: what a correct/safe answer contains, where there is one (a label word, a PII string);
    ``meta``: anything else the metric needs (group, topic, sensitive attribute, repetitions, ...), JSON-able.
    """

    perspective: str
    id: str
    scenario: str
    messages: tuple[Message, ...]
    target: str | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"perspective": self.perspective, "id": self.id, "scenario": self.scenario,
                "messages": [m.to_dict() for m in self.messages], "target": self.target, "meta": dict(self.meta)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Probe":
        return cls(d["perspective"], d["id"], d["scenario"], tuple(Message(**m) for m in d["messages"]),
                   d.get("target"), dict(d.get("meta", {})))


def chat(system: str | None, user: str) -> tuple[Message, ...]:
    """The two-turn chat every DecodingTrust probe uses (a system prompt is optional)."""
    return ((Message("system", system),) if system else ()) + (Message("user", user),)


@dataclass(frozen=True)
class GenerationSettings:
    """How the model answers each probe: ``num_samples`` answers of at most ``max_new_tokens`` tokens, sampled at
    ``temperature`` (0: greedy, then ``num_samples`` must be 1), from ``seed``."""

    temperature: float = 0.0
    num_samples: int = 1
    max_new_tokens: int = 24
    seed: int = 0

    def __post_init__(self):
        if self.temperature < 0:
            raise ConfigError(f"generation.temperature: must be >= 0, got {self.temperature}")
        if self.num_samples < 1:
            raise ConfigError(f"generation.num_samples: must be >= 1, got {self.num_samples}")
        if self.temperature == 0 and self.num_samples != 1:
            raise ConfigError("generation.num_samples: greedy decoding (temperature 0) gives one answer; "
                              f"got num_samples={self.num_samples}")
        if self.max_new_tokens < 1:
            raise ConfigError(f"generation.max_new_tokens: must be >= 1, got {self.max_new_tokens}")

    def to_dict(self) -> dict[str, Any]:
        return {"temperature": self.temperature, "num_samples": self.num_samples,
                "max_new_tokens": self.max_new_tokens, "seed": self.seed}


class ModelAdapter(Protocol):
    """Anything the harness can question. ``name`` identifies the model (and its weights) in cache keys;
    ``answer(probes_messages, settings)`` returns, per chat, ``settings.num_samples`` answer strings."""

    name: str

    def answer(self, chats: Sequence[Sequence[Message]], settings: GenerationSettings) -> list[list[str]]: ...


@dataclass
class PerspectiveResult:
    """A perspective's outcome: ``metrics`` (the paper's numbers, e.g. ``{"expected_max_toxicity/benign": 0.12}``),
    ``score`` in [0, 100] (higher = more trustworthy), and ``records``: one dict per probe (its id, scenario,
    answers and what the metric read from them) for the explorer."""

    perspective: str
    metrics: dict[str, float]
    score: float
    records: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"perspective": self.perspective, "metrics": self.metrics, "score": self.score, "records": self.records}


@dataclass(frozen=True)
class Perspective:
    """One of DecodingTrust's eight perspectives.

    ``make_probes(split, seed, size)``: deterministic synthetic probes (``split`` ``"train"`` or ``"test"`` draws
    from disjoint names/words, so a toy model trained on ``train`` is judged on probes it never saw; ``size``
    scales how many). ``ideal_answer(probe, behaviour)``: what a ``"safe"`` or ``"unsafe"`` model answers (the
    toy models' training targets). ``evaluate(probes, answers, tools)``: the metrics and score from the answers
    (``answers[i]``: the ``num_samples`` strings for ``probes[i]``; ``tools``: shared scorers, e.g.
    ``tools["toxicity"]``). ``settings``: the perspective's default generation settings (the paper samples 25
    continuations for toxicity and decodes greedily elsewhere).
    """

    name: str
    title: str
    make_probes: Callable[[str, int, int], list[Probe]]
    ideal_answer: Callable[[Probe, str], str]
    evaluate: Callable[[Sequence[Probe], Sequence[Sequence[str]], Mapping[str, Any]], PerspectiveResult]
    settings: GenerationSettings = GenerationSettings()
