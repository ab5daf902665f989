"""RankRAG's synthetic world: people, companies, short passages and the questions about them.

RankRAG (arXiv 2407.02485) trains one model to rank retrieved passages and to answer from the
best of them. Its Stage II blend (Sec. 4.2) mixes context-rich QA, retrieval-augmented QA with
*hard negatives* and context ranking. At toy scale the passages must be invented, so that a
model trained from scratch can only answer by reading its context, and the negatives must be
hard in the paper's sense: they look relevant and are not. This world is built for that:

* people with a first and a last name drawn from small pools (about ``sqrt(2 * num_people)``
  names each), so most people share a first or a last name with others and only the full name
  identifies a person (:func:`confusable_negatives`: namesakes' passages about the same facet);
* three short passages per person, one per facet (:data:`PERSON_FACETS`): ``"birth"`` (city and
  year), ``"work"`` (occupation and employer), ``"hobby"`` (the hobby and a sibling or a pet);
  every one names the full name, so the person's other facet passages are the paper's hard
  negatives (:func:`hard_negatives`): they mention the entity and miss the answer;
* companies with a headquarters city and a founding year, one passage each;
* single-hop questions, one per person and attribute (:data:`ATTRIBUTES`), answered by one facet
  passage; and for a fraction of the people a two-hop question (the city of their employer's
  headquarters) that needs the work passage *and* the company passage.

Names, cities and companies come from a seeded ``faker.Faker`` instance (never the global seed),
every other choice from ``numpy.random.default_rng(seed)``: the world is deterministic for a seed.
The passage list is the public retrieval corpus (everyone's passages); the questions are split
into ``"train"`` and ``"test"`` by person (:func:`~nvrepro.core.data.corpus.split_indices`), so
test people's questions are never trained on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from faker import Faker

from nvrepro.core.data.corpus import split_indices
from nvrepro.core.tooling.validation import require, require_positive_int

PERSON_FACETS = ("birth", "work", "hobby")
COMPANY_FACET = "company"
ATTRIBUTES = ("city", "year", "occupation", "employer", "hobby")
TWO_HOP_ATTRIBUTE = "employer_city"
FACET_OF = {"city": "birth", "year": "birth", "occupation": "work", "employer": "work", "hobby": "hobby"}

NUM_CITIES = 16
BIRTH_YEARS = (1940, 2000)  # drawn from [first, last)
FOUNDING_YEARS = (1850, 1990)
OCCUPATIONS = ("baker", "nurse", "pilot", "chemist", "architect", "lawyer", "dentist", "editor", "plumber",
               "librarian", "economist", "carpenter", "surveyor", "pharmacist")
HOBBIES = ("chess", "rowing", "pottery", "archery", "fencing", "gardening", "sailing", "juggling", "origami",
           "birdwatching", "knitting", "cycling")
PETS = ("dog", "cat", "parrot", "tortoise", "rabbit", "goat")
PET_NAMES = ("Biscuit", "Pepper", "Noodle", "Ziggy", "Clover", "Muffin", "Pickle", "Waffle")

PASSAGE_TEMPLATES = {
    "birth": ("{name} was born in {city} in {year}.",
              "{name} was born in the year {year} in the city of {city}.",
              "The birthplace of {name} is {city}, and the year of birth is {year}."),
    "work": ("{name} works as {a_occupation} at {employer}.",
             "{name} is employed by {employer} as {a_occupation}.",
             "At {employer}, {name} has a job as {a_occupation}."),
    "hobby": ("{name} enjoys {hobby} and has a sibling called {detail}.",
              "In spare time {name} practises {hobby}, often together with a {detail}.",
              "Friends know {name} for a love of {hobby}; {name} also has a sibling named {detail}."),
    COMPANY_FACET: ("{company} was founded in {year} and is headquartered in {city}.",
                    "Founded in {year}, {company} has its head office in {city}.",
                    "The headquarters of {company} are in {city}; the firm dates from {year}."),
}
QUESTION_TEMPLATES = {
    "city": ("In which city was {name} born?", "Where was {name} born?"),
    "year": ("In which year was {name} born?", "When was {name} born?"),
    "occupation": ("What is the occupation of {name}?", "What does {name} do for a living?"),
    "employer": ("Which company does {name} work for?", "Who employs {name}?"),
    "hobby": ("What is the hobby of {name}?", "Which pastime does {name} enjoy?"),
    TWO_HOP_ATTRIBUTE: ("In which city is the company that {name} works for headquartered?",
                        "Where is the head office of the employer of {name}?"),
}


@dataclass(frozen=True)
class Passage:
    """One corpus passage: ``pid`` is its index in :attr:`World.passages`; ``entity`` is the full
    name of the person (or the company) it is about, ``facet`` one of :data:`PERSON_FACETS` or
    :data:`COMPANY_FACET`."""

    pid: int
    text: str
    entity: str
    facet: str


@dataclass(frozen=True)
class Question:
    """A question about ``entity``'s ``attribute`` (:data:`ATTRIBUTES` or :data:`TWO_HOP_ATTRIBUTE`),
    answered by any of ``answers``; ``gold`` are the pids of the passages needed (one, or two for
    ``hops == 2``: the person's work passage, then the company passage)."""

    qid: str
    text: str
    answers: tuple[str, ...]
    gold: tuple[int, ...]
    entity: str
    attribute: str
    hops: int

    @property
    def answer(self) -> str:
        return self.answers[0]


@dataclass(frozen=True)
class Company:
    name: str
    city: str
    year: int


@dataclass(frozen=True)
class Person:
    first: str
    last: str
    city: str
    year: int
    occupation: str
    employer: str
    hobby: str

    @property
    def name(self) -> str:
        return f"{self.first} {self.last}"


@dataclass
class World:
    """The corpus (``passages``), the questions by split (``"train"``, ``"test"``), the people and
    companies behind them, and lookups of passages by entity and facet."""

    passages: list[Passage]
    questions: dict[str, list[Question]]
    people: list[Person]
    companies: list[Company]
    _index: dict[tuple[str, str], int] = field(init=False, repr=False)
    _by_entity: dict[str, list[int]] = field(init=False, repr=False)
    _people: dict[str, Person] = field(init=False, repr=False)
    _sharing: dict[str, list[str]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._index = {(p.entity, p.facet): p.pid for p in self.passages}
        self._by_entity = {}
        for p in self.passages:
            self._by_entity.setdefault(p.entity, []).append(p.pid)
        self._people = {p.name: p for p in self.people}
        self._sharing = {}
        for p in self.people:
            for part in (("first", p.first), ("last", p.last)):
                self._sharing.setdefault(part, []).append(p.name)

    def entity_passages(self, entity: str) -> list[int]:
        """The pids of every passage about ``entity`` (a person's three, a company's one)."""
        return list(self._by_entity.get(entity, ()))

    def facet_passage(self, entity: str, facet: str) -> int:
        """The pid of ``entity``'s passage about ``facet``."""
        return self._index[(entity, facet)]

    def person(self, name: str) -> Person:
        return self._people[name]

    def namesakes(self, name: str) -> list[str]:
        """The full names of the other people who share the first or the last name of ``name``."""
        person = self._people[name]
        shared = self._sharing[("first", person.first)] + self._sharing[("last", person.last)]
        return sorted(set(shared) - {name})

    def texts(self, pids: list[int] | tuple[int, ...]) -> list[str]:
        return [self.passages[i].text for i in pids]


def _distinct(draw: Callable[[], str], n: int, ok: Callable[[str], bool], what: str) -> list[str]:
    """``n`` distinct values of ``draw()`` that pass ``ok``, in the order drawn."""
    seen: dict[str, None] = {}
    for _ in range(200 * n + 1000):
        value = draw()
        if value not in seen and ok(value):
            seen[value] = None
            if len(seen) == n:
                return list(seen)
    raise RuntimeError(f"faker gave fewer than {n} distinct usable {what}")


def _name_pools(fake: Faker, num_people: int) -> tuple[list[str], list[str]]:
    size = math.ceil(math.sqrt(2 * num_people))
    firsts = _distinct(fake.first_name, size, str.isalpha, "first names")
    lasts = _distinct(fake.last_name, size, lambda s: s.isalpha() and s not in firsts, "last names")
    return firsts, lasts


def _mentions_no_name(names: list[str]) -> Callable[[str], bool]:
    """A filter for cities and companies: no person's first or last name inside them."""
    lowered = [n.lower() for n in names]
    return lambda text: not any(n in text.lower() for n in lowered)


def _article(word: str) -> str:
    return ("an " if word[0] in "aeiou" else "a ") + word


def _fill(rng: np.random.Generator, facet: str, **values) -> str:
    templates = PASSAGE_TEMPLATES[facet]
    return templates[int(rng.integers(len(templates)))].format(**values)


def _people(fake: Faker, rng: np.random.Generator, num_people: int, cities: list[str],
            companies: list[Company], firsts: list[str], lasts: list[str]) -> list[Person]:
    combos = rng.choice(len(firsts) * len(lasts), size=num_people, replace=False)
    people = []
    for c in combos.tolist():
        people.append(Person(
            first=firsts[c // len(lasts)], last=lasts[c % len(lasts)],
            city=cities[int(rng.integers(len(cities)))], year=int(rng.integers(*BIRTH_YEARS)),
            occupation=OCCUPATIONS[int(rng.integers(len(OCCUPATIONS)))],
            employer=companies[int(rng.integers(len(companies)))].name,
            hobby=HOBBIES[int(rng.integers(len(HOBBIES)))]))
    return people


def _hobby_detail(rng: np.random.Generator, person: Person, firsts: list[str], template: str) -> str:
    if "sibling" in template:
        others = [f for f in firsts if f != person.first]
        return others[int(rng.integers(len(others)))]
    pet = PETS[int(rng.integers(len(PETS)))]
    return f"{pet} called {PET_NAMES[int(rng.integers(len(PET_NAMES)))]}"


def _person_passages(rng: np.random.Generator, person: Person, firsts: list[str], start: int) -> list[Passage]:
    name = person.name
    birth = _fill(rng, "birth", name=name, city=person.city, year=person.year)
    work = _fill(rng, "work", name=name, a_occupation=_article(person.occupation), employer=person.employer)
    template = PASSAGE_TEMPLATES["hobby"][int(rng.integers(len(PASSAGE_TEMPLATES["hobby"])))]
    hobby = template.format(name=name, hobby=person.hobby, detail=_hobby_detail(rng, person, firsts, template))
    return [Passage(start + i, text, name, facet)
            for i, (text, facet) in enumerate(zip((birth, work, hobby), PERSON_FACETS))]


def _ask(rng: np.random.Generator, attribute: str, name: str) -> str:
    templates = QUESTION_TEMPLATES[attribute]
    return templates[int(rng.integers(len(templates)))].format(name=name)


def _questions_about(rng: np.random.Generator, world: World, index: int, two_hop: bool) -> list[Question]:
    person = world.people[index]
    name = person.name
    answers = {"city": person.city, "year": str(person.year), "occupation": person.occupation,
               "employer": person.employer, "hobby": person.hobby}
    questions = [Question(f"p{index}.{a}", _ask(rng, a, name), (answers[a],),
                          (world.facet_passage(name, FACET_OF[a]),), name, a, 1) for a in ATTRIBUTES]
    if two_hop:
        company = next(c for c in world.companies if c.name == person.employer)
        gold = (world.facet_passage(name, "work"), world.facet_passage(company.name, COMPANY_FACET))
        questions.append(Question(f"p{index}.{TWO_HOP_ATTRIBUTE}", _ask(rng, TWO_HOP_ATTRIBUTE, name),
                                  (company.city,), gold, name, TWO_HOP_ATTRIBUTE, 2))
    for q in questions:
        if any(a.lower() in q.text.lower() for a in q.answers):
            raise RuntimeError(f"question {q.qid}: answer inside the question text {q.text!r}")
    return questions


def _validate(num_people, num_companies, two_hop_fraction, test_fraction) -> None:
    require_positive_int(num_people, "num_people")
    require(num_people >= 4, "num_people", f"must be at least 4 (a train and a test person), got {num_people}")
    require_positive_int(num_companies, "num_companies")
    require(isinstance(two_hop_fraction, (int, float)) and 0.0 <= two_hop_fraction <= 1.0,
            "two_hop_fraction", f"must be in [0, 1], got {two_hop_fraction!r}")
    require(isinstance(test_fraction, (int, float)) and 0.0 < test_fraction < 1.0,
            "test_fraction", f"must be in (0, 1), got {test_fraction!r}")


def build_world(num_people: int = 300, num_companies: int = 40, two_hop_fraction: float = 0.2,
                test_fraction: float = 0.2, seed: int = 0) -> World:
    """The world for ``seed`` (see the module docstring): ``3 * num_people + num_companies``
    passages (people's first, three each in :data:`PERSON_FACETS` order, then the companies) and
    the questions of the train and test people."""
    _validate(num_people, num_companies, two_hop_fraction, test_fraction)
    fake = Faker("en_US")
    fake.seed_instance(seed)
    rng = np.random.default_rng(seed)
    firsts, lasts = _name_pools(fake, num_people)
    no_name = _mentions_no_name(firsts + lasts)
    cities = _distinct(fake.city, NUM_CITIES, no_name, "cities")
    names = _distinct(fake.company, num_companies,
                      lambda s: "," not in s and len(s.split()) <= 3 and no_name(s), "companies")
    companies = [Company(n, cities[int(rng.integers(len(cities)))], int(rng.integers(*FOUNDING_YEARS)))
                 for n in names]
    people = _people(fake, rng, num_people, cities, companies, firsts, lasts)
    passages: list[Passage] = []
    for person in people:
        passages += _person_passages(rng, person, firsts, len(passages))
    for c in companies:
        text = _fill(rng, COMPANY_FACET, company=c.name, city=c.city, year=c.year)
        passages.append(Passage(len(passages), text, c.name, COMPANY_FACET))
    world = World(passages, {}, people, companies)
    two_hop = set(rng.choice(num_people, size=int(round(two_hop_fraction * num_people)), replace=False).tolist())
    train, test = split_indices(num_people, test_fraction, seed)
    for split, indices in (("train", train), ("test", test)):
        world.questions[split] = [q for i in indices for q in _questions_about(rng, world, i, i in two_hop)]
    return world


def hard_negatives(world: World, question: Question) -> list[int]:
    """RankRAG's hard negatives for ``question``: the pids of passages about its entity that are
    not gold and do not contain an answer (the person's other facet passages)."""
    return [pid for pid in world.entity_passages(question.entity)
            if pid not in question.gold and not _contains_answer(world.passages[pid].text, question)]


def confusable_negatives(world: World, question: Question, rng: np.random.Generator, n: int) -> list[int]:
    """Up to ``n`` pids (drawn by ``rng``) of passages about the same facet as ``question``'s first
    gold passage, of other people who share the first or the last name of its entity."""
    facet = world.passages[question.gold[0]].facet
    pool = [world.facet_passage(name, facet) for name in world.namesakes(question.entity)]
    if not pool or n <= 0:
        return []
    picks = rng.choice(len(pool), size=min(n, len(pool)), replace=False)
    return [pool[i] for i in picks.tolist()]


def _contains_answer(text: str, question: Question) -> bool:
    return any(a.lower() in text.lower() for a in question.answers)
