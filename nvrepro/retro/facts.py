"""A synthetic world of facts for toy open-domain QA (RETRO++, arXiv 2304.06762 Sec. 6; InstructRetro's QA).

Open-domain QA asks a question whose answer sits in one passage of the retrieval database. Here
the passages are invented, so no pretrained model knows the answers and a model can only answer
by retrieving:

* entities: invented people (given name and surname built from syllables with a seeded numpy
  generator; surnames and given names are drawn from small pools, so many people share one of
  the two and only the full name identifies a person) with four attributes: ``city`` of birth,
  ``year`` of birth, ``occupation`` and ``hobby``, each drawn from a small list, so every value is
  shared by many people (distractors): an answer cannot be guessed from the question;
* passages (:func:`fact_corpus`): one per entity, one sentence per attribute fact in a template
  drawn by the seed, the full name in every sentence (so every chunk of a passage names it);
  passage ``i`` is corpus document ``i`` (:func:`write_fact_corpus` writes the ``hf_disk`` dataset
  that ``build_database`` indexes with ``corpus: hf_disk``);
* questions (:func:`qa_examples`): one per entity and attribute, naming only the entity; the
  train/test split is by entity (``split_indices`` with the seed), so test people are unseen;
* :func:`retrieval_accuracy`: each question's top-``k`` database rows by its text
  (``db.retrieve``) and the share whose top-1 (top-``k``) comes from the question's passage.

Shapes: ``rows (q, k)`` database rows of ``q`` questions. Everything is deterministic for a seed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nvrepro.core.tooling.validation import require, require_positive_int

SYLLABLES = ("ka", "lo", "mi", "ren", "sa", "tor", "vel", "na", "dri", "bo", "fin", "ga", "hal", "jo", "mor",
             "pe", "quin", "ra", "sil", "ta", "ul", "wen", "ya", "zo", "bren", "cas", "del", "vi", "nor", "ith")
CITIES = ("Arvelholm", "Brindor", "Casmere", "Dunhallow", "Elsworth", "Fennick", "Galdemar", "Harrowgate",
          "Istvale", "Korrin Bay", "Lowmarsh", "Merrowdown", "Northam Cross", "Oakhurst", "Pellinor", "Quarry End")
OCCUPATIONS = ("baker", "cartographer", "violinist", "ship captain", "glassblower", "botanist", "watchmaker",
               "astronomer", "tailor", "architect", "beekeeper", "translator", "blacksmith", "printer")
HOBBIES = ("chess", "falconry", "rowing", "pottery", "archery", "fencing", "gardening", "sailing", "juggling",
           "origami", "birdwatching", "knitting")
YEARS = (1850, 1990)  # birth years are drawn from [first, last)
ATTRIBUTES = ("city", "year", "occupation", "hobby")

PASSAGE_TEMPLATES = {
    "city": ("{name} was born in the city of {city}.", "{name} came into the world in {city}.",
             "The birthplace of {name} was {city}."),
    "year": ("{name} was born in the year {year}.", "The year {name} was born was {year}.",
             "{name} was born in {year}."),
    "occupation": ("{name} worked as {a_occupation}.", "By trade, {name} was {a_occupation}.",
                   "{name} earned a living as {a_occupation}."),
    "hobby": ("In spare hours {name} enjoyed {hobby}.", "{name} was fond of {hobby}.",
              "Friends of {name} remember a passion for {hobby}."),
}
QUESTION_TEMPLATES = {
    "city": ("In which city was {name} born?", "Where was {name} born?"),
    "year": ("In which year was {name} born?", "When was {name} born?"),
    "occupation": ("What was the occupation of {name}?", "What did {name} do for a living?"),
    "hobby": ("Which pastime did {name} enjoy?", "What was the hobby of {name}?"),
}


@dataclass(frozen=True)
class Entity:
    """One invented person and their four facts."""

    name: str
    city: str
    year: int
    occupation: str
    hobby: str

    def answer(self, attribute: str) -> str:
        return str(getattr(self, attribute))


@dataclass(frozen=True)
class QAExample:
    """A question about ``entity``'s ``attribute``; ``answer`` is in passage ``passage`` (its corpus index)."""

    question: str
    answer: str
    entity: str
    attribute: str
    passage: int


def _article(word: str) -> str:
    return ("an " if word[0] in "aeiou" else "a ") + word


def _names(rng: np.random.Generator, count: int, syllables: tuple[int, int]) -> list[str]:
    """``count`` distinct capitalised names of ``syllables`` (low, high inclusive) syllables, none
    containing an attribute value (so no answer is ever inside a question)."""
    banned = [v.lower() for v in CITIES + OCCUPATIONS + HOBBIES]
    out: list[str] = []
    while len(out) < count:
        name = "".join(rng.choice(SYLLABLES, int(rng.integers(syllables[0], syllables[1] + 1)))).capitalize()
        if name not in out and not any(b in name.lower() for b in banned):
            out.append(name)
    return out


def entities(num_entities: int = 200, seed: int = 0) -> list[Entity]:
    """``num_entities`` people with distinct full names; given names and surnames come from pools
    of about ``sqrt(2 num_entities)`` each, so most people share a name part with others."""
    require_positive_int(num_entities, "num_entities")
    rng = np.random.default_rng(seed)
    pool = max(2, int(np.ceil(np.sqrt(2 * num_entities))))
    given, surnames = _names(rng, pool, (2, 2)), _names(rng, pool, (2, 3))
    full = [f"{g} {s}" for g in given for s in surnames]
    chosen = rng.choice(len(full), num_entities, replace=False)
    return [Entity(full[i], str(rng.choice(CITIES)), int(rng.integers(*YEARS)), str(rng.choice(OCCUPATIONS)),
                   str(rng.choice(HOBBIES))) for i in chosen]


def passage(entity: Entity, rng: np.random.Generator) -> str:
    """The passage of ``entity``: one sentence per attribute (templates and order drawn from ``rng``),
    the birth facts first."""
    values = dict(name=entity.name, city=entity.city, year=entity.year, hobby=entity.hobby,
                  a_occupation=_article(entity.occupation))
    later = list(rng.permutation(["occupation", "hobby"]))
    sentences = [str(rng.choice(PASSAGE_TEMPLATES[a])).format(**values) for a in ["city", "year", *later]]
    return " ".join(sentences)


def fact_corpus(num_entities: int = 200, seed: int = 0) -> list[str]:
    """The passages, passage ``i`` about ``entities(num_entities, seed)[i]``."""
    rng = np.random.default_rng((seed, 1))
    return [passage(e, rng) for e in entities(num_entities, seed)]


def write_fact_corpus(path: str | Path, num_entities: int = 200, seed: int = 0, progress: bool = False) -> Path:
    """Write :func:`fact_corpus` as a ``datasets.save_to_disk`` directory with a ``text`` column
    (``corpus: hf_disk``, ``paths: [path]``); returns ``path``."""
    import datasets

    from nvrepro.core.retrieval.neighbours import datasets_progress

    path = Path(path)
    with datasets_progress(progress):
        datasets.Dataset.from_dict({"text": fact_corpus(num_entities, seed)}).save_to_disk(str(path))
    return path


def fact_database_config(folder: str | Path, num_entities: int = 200, seed: int = 0, **database):
    """Write the fact corpus under ``folder/corpus`` (unless it is there already) and return the
    :class:`DatabaseConfig` that indexes it into ``folder/db`` (every passage in the database; byte
    tokens; ``database`` overrides fields such as ``chunk_len``)."""
    from nvrepro.core.retrieval.database import DatabaseConfig

    folder = Path(folder)
    corpus = folder / "corpus"
    if not (corpus / "dataset_info.json").exists():  # written once: a reopened database reads it back
        write_fact_corpus(corpus, num_entities, seed)
    fields = dict(corpus="hf_disk", paths=[str(corpus)], heldout_fraction=0.0, seed=seed,
                  out_dir=str(folder / "db"))
    return DatabaseConfig(**{**fields, **database})


def qa_examples(num_entities: int = 200, seed: int = 0, test_fraction: float = 0.2) -> dict[str, list[QAExample]]:
    """``{"train": [...], "test": [...]}``: one question per entity and attribute (template drawn by
    the seed), split by entity with ``split_indices(num_entities, test_fraction, seed)``."""
    from nvrepro.core.data.corpus import split_indices

    require(0.0 < test_fraction < 1.0, "test_fraction", f"must be in (0, 1), got {test_fraction!r}")
    people = entities(num_entities, seed)
    rng = np.random.default_rng((seed, 2))
    split = dict(zip(("train", "test"), split_indices(num_entities, test_fraction, seed)))
    return {name: [QAExample(str(rng.choice(QUESTION_TEMPLATES[a])).format(name=people[i].name),
                             people[i].answer(a), people[i].name, a, i)
                   for i in idx for a in ATTRIBUTES] for name, idx in split.items()}


def retrieval_accuracy(db, examples: list[QAExample], k: int = 2) -> dict:
    """Retrieve the top-``k`` database rows of each question's text; returns ``rows (q, k)``,
    ``top1`` (share of questions whose first row is from their passage), ``topk`` (share with any of
    the ``k`` from it) and ``questions``. Assumes passage ``i`` is corpus document ``i``."""
    require_positive_int(k, "k")
    require(len(examples) > 0, "examples", "need at least one question")
    rows, _ = db.retrieve([e.question for e in examples], k)
    rows = np.asarray(rows)
    docs = np.where(rows >= 0, db.chunks.doc_ids[np.maximum(rows, 0)], -1)
    right = docs == np.array([e.passage for e in examples])[:, None]
    return {"rows": rows, "top1": float(right[:, 0].mean()), "topk": float(right.any(axis=1).mean()),
            "questions": len(examples)}
