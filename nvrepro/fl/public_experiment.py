"""Notebook 02 (``notebooks/fl/02_public_data.ipynb``): what public data buys private federated learning
(arXiv 2305.12132), four experiments on one population of synthetic users, all DP-FedAvg on Flower.

Every federated arm runs the same rounds, clients per round and clipping, with Poisson sampling and
``z`` calibrated to its epsilon (:func:`nvrepro.fl.arms.calibrated_settings`); utility is the
held-out users' next-token loss in nats per byte (a unit that compares tokenizers), each claim
paired over held-out users (users no client plays).

1. **Pretraining** (:data:`PRETRAINING`): the on-device model pretrained on public text, then DP-FL,
   against DP-FL from scratch, at every epsilon of the grid (and without noise).
2. **Tokenizer** (:data:`TOKENIZER`): at the headline epsilon, from scratch: bytes vs a BPE trained on
   public text vs a BPE trained on the training users' text (which leaks: its vocabulary spells users'
   private words; counted in ``leaked_words``).
3. **Distillation** (:data:`DISTILLATION`): a larger model trained on public text teaches the on-device
   model on public text (:func:`nvrepro.fl.public.pretrain` with ``teacher``), then DP-FL, against the
   on-device model pretrained directly for the same steps.
4. **Distribution matching** (:data:`MATCHING`): public sentences ranked by the DP-FL model of
   experiment 1 (scratch, headline epsilon: a DP release, so the ranking is post-processing) and the
   best ``B`` kept, against ``B`` drawn at random, for several budgets ``B``; each selection
   pretrains the on-device model (steps in proportion to the data), then DP-FL. The matching
   pipeline spends the scoring model's epsilon too: ``matching_total_epsilon`` composes both runs.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np

from nvrepro.core.tooling.claims import Claim, Judgement, all_parts, at_least_threshold, not_applicable
from nvrepro.core.tooling.intervals import paired_gain
from nvrepro.core.tooling.profiles import profile_settings
from nvrepro.fl.arms import calibrated_settings, spent_epsilon, summarize
from nvrepro.fl.server import Arm, DPFedAvgSettings, per_user_loss
from nvrepro.fl.task import DEFAULT_MODEL_CONFIG, tokenizer_json

# Margins, fixed before the first paper run: how much worse (nats/byte) the public BPE may be than the
# leaky private one, and matching at the smallest budget than random at the largest, and still "match".
TOKENIZER_MARGIN = 0.05
MATCHING_MARGIN = 0.02

_TEACHER = {"pattern": "*-*-", "d_model": 96, "vocab_size": 260, "max_seq_len": 64,
            "attention": {"n_heads": 4, "n_kv_heads": 4, "head_dim": 24}, "ffn": {"hidden": 256}}
_SMOKE_TEACHER = dict(_TEACHER, pattern="*-", d_model=48, attention={"n_heads": 2, "n_kv_heads": 2, "head_dim": 24},
                      ffn={"hidden": 96})

# ``base``: DPFedAvgSettings fields of every federated arm; ``epsilons``: the grid of experiment 1
# (None: no noise); ``headline``: the epsilon of experiments 2-4; ``pool``: template sentences and Bible
# sentences (None: all) of the public pool; ``pretrain``: central training (steps, batch, lr);
# ``budgets``: public sentences kept by the samplers; ``sampler_epochs`` / ``sampler_min_steps``: their
# pretraining length.
PROFILES = {
    "smoke": dict(base=dict(num_users=6, clients_per_round=3, rounds=2, eval_users=3, sentences_per_user=16,
                            local_steps=2, batch_size=4, seq_len=32, clip_norm=0.5, client_lr=0.5, eval_every=1),
                  epsilons=[None, 8.0], headline=8.0, delta=1e-3,
                  pool=dict(templates=60, bible=300), vocab_size=300,
                  pretrain=dict(steps=10, batch_size=8, lr=3e-3), teacher=_SMOKE_TEACHER, teacher_steps=10,
                  budgets=[20, 80], sampler_epochs=1, sampler_min_steps=5),
    "paper": dict(base=dict(num_users=1000, clients_per_round=50, rounds=60, eval_users=50, sentences_per_user=64,
                            local_steps=4, batch_size=8, seq_len=32, clip_norm=0.5, client_lr=0.5, eval_every=10),
                  epsilons=[None, 8.0, 4.0, 2.0], headline=2.0, delta=1e-5,
                  pool=dict(templates=3000, bible=None), vocab_size=512,
                  pretrain=dict(steps=3000, batch_size=32, lr=3e-3), teacher=_TEACHER, teacher_steps=3000,
                  budgets=[500, 2000, 8000], sampler_epochs=4, sampler_min_steps=100),
}


def plan(profile: str) -> dict:
    """The settings of ``profile`` (:data:`PROFILES`); a clear error for an unknown one."""
    return profile_settings(PROFILES, profile)


def eps_name(epsilon: float | None) -> str:
    """An arm-name suffix for an epsilon: ``inf`` for no noise, else the number (``2``, ``0.5``)."""
    return "inf" if epsilon is None else f"{epsilon:g}"


def leaked_words(tokenizer, users: range, seed: int) -> int:
    """How many of ``users``' private words the tokenizer holds as one whole-word token (a merge
    learnt from their text): a vocabulary that spells them has seen them."""
    from nvrepro.fl.users import user_profile

    vocab = set(tokenizer.backend.get_vocab()) if hasattr(tokenizer, "backend") else set()
    words = {w for u in users for w in user_profile(u, seed).vocabulary}
    return sum(("\u0120" + w) in vocab or w in vocab for w in words)  # \u0120: byte-level BPE's space


def private_only_tokens(tokenizer, public_text: str) -> int:
    """How many of the tokenizer's tokens spell a string found nowhere in ``public_text`` (the
    public corpus joined): merges that only private text could have taught it. Only merged tokens
    count (two characters or more): the 256 single bytes every byte-level BPE starts from are not
    learnt, nor are pieces of a multi-byte character (they decode to U+FFFD alone)."""
    if not hasattr(tokenizer, "backend"):
        return 0
    special = set(tokenizer.special_ids.values())
    return sum(1 for i in range(tokenizer.vocab_size)
               if i not in special and len(s := tokenizer.decode([i], skip_special=False)) >= 2
               and "\ufffd" not in s and s not in public_text)


def _sampler_steps(p: dict, texts: list[str]) -> int:
    """Pretraining steps for a selection: ``sampler_epochs`` passes over its rows, at least
    ``sampler_min_steps`` (so compute grows with the data kept)."""
    seq, batch = p["base"]["seq_len"], p["pretrain"]["batch_size"]
    rows = math.ceil(sum(len(t.encode("utf-8")) + 1 for t in texts) / seq)
    return max(p["sampler_min_steps"], math.ceil(p["sampler_epochs"] * rows / batch))


def run(profile: str = "smoke", seed: int = 0, progress: bool = True) -> dict:
    """Run the four experiments (two Flower simulations: the sampler arms need the scoring model of
    the first); returns every arm's summary, the pretrained models' held-out losses before DP-FL,
    the samplers' selections and the tokenizers' facts."""
    from nvrepro.fl.public import (is_template, matching_scores, pretrain, public_pool, select_public,
                                   train_tokenizer)
    from nvrepro.fl.simulation import run_arms
    from nvrepro.fl.task import build_lm
    from nvrepro.fl.users import user_texts

    p = plan(profile)
    base, delta, headline = dict(p["base"], seed=seed), p["delta"], p["headline"]
    pre = dict(p["pretrain"], seq_len=base["seq_len"], seed=seed, progress=progress)
    small = dict(DEFAULT_MODEL_CONFIG)
    pool = public_pool(p["pool"]["templates"], seed, p["pool"]["bible"])
    near = is_template(pool, p["pool"]["templates"])

    # tokenizers: public (the pool) and private (the training users' text: leaks, for comparison only)
    train_users = range(base["num_users"])
    public_tok = train_tokenizer(pool, p["vocab_size"])
    private_tok = train_tokenizer([t for u in train_users for t in user_texts(u, base["sentences_per_user"], seed)],
                                  p["vocab_size"])

    # central pretraining on public text
    public_state, _ = pretrain(small, pool, desc="pretrain on-device model", **pre)
    teacher_state, _ = pretrain(p["teacher"], pool, **dict(pre, steps=p["teacher_steps"]), desc="pretrain teacher")
    teacher = build_lm(p["teacher"], seed)
    teacher.load_state_dict(teacher_state)
    distilled_state, _ = pretrain(small, pool, teacher=teacher, desc="distil into on-device model", **pre)

    def settings(eps, **over) -> DPFedAvgSettings:
        return calibrated_settings(base, eps, delta, **over)

    def bpe(tok) -> dict:
        return dict(tokenizer=tokenizer_json(tok), model_config=dict(small, vocab_size=tok.vocab_size))

    arms = []
    for eps in p["epsilons"]:
        arms += [Arm(f"scratch_{eps_name(eps)}", settings(eps)),
                 Arm(f"public_{eps_name(eps)}", settings(eps), public_state)]
    arms += [Arm("tok_public_bpe", settings(headline, **bpe(public_tok))),
             Arm("tok_private_bpe", settings(headline, **bpe(private_tok))),
             Arm("distilled", settings(headline), distilled_state)]
    stage1 = run_arms(arms)

    # distribution matching: score the pool with the DP model, pretrain on each selection, then DP-FL
    scorer = stage1[f"scratch_{eps_name(headline)}"]["state"]
    scores = matching_scores(small, scorer, pool, base["seq_len"], progress=progress)
    before = {"public": per_user_loss(settings(None), public_state),
              "distilled": per_user_loss(settings(None), distilled_state),
              "teacher": per_user_loss(settings(None, model_config=p["teacher"]), teacher_state),
              "scratch": per_user_loss(settings(None), build_lm(small, seed).state_dict())}
    selections, sampler_states = {}, {}
    for method in ("matching", "random"):
        for budget in p["budgets"]:
            idx = select_public(pool, budget, method, scores, seed)
            texts = [pool[i] for i in idx]
            steps = _sampler_steps(p, texts)
            state, _ = pretrain(small, texts, **dict(pre, steps=steps), desc=f"pretrain on {method} {budget}")
            key = f"{method}_{budget}"
            sampler_states[key] = state
            before[key] = per_user_loss(settings(None), state)
            selections[key] = {"budget": budget, "steps": steps, "near_share": float(near[idx].mean()),
                               "bytes": sum(len(t.encode("utf-8")) for t in texts)}
    low, high = min(p["budgets"]), max(p["budgets"])
    stage2 = run_arms([Arm(f"matching_{low}", settings(headline), sampler_states[f"matching_{low}"]),
                       Arm(f"random_{low}", settings(headline), sampler_states[f"random_{low}"]),
                       Arm(f"random_{high}", settings(headline), sampler_states[f"random_{high}"])])

    all_settings = {a.name: a.settings for a in arms}
    all_settings.update({name: settings(headline) for name in stage2})
    results = {**stage1, **stage2}
    public_blob = "\n".join(pool)
    summaries = {name: summarize(results[name], s, delta) for name, s in all_settings.items()}
    return {"arms": summaries, "before_fl": before, "selections": selections,
            "pool": {"sentences": len(pool), "near_share": float(near.mean())},
            "tokenizers": {name: {"vocab_size": tok.vocab_size, "leaked_words": leaked_words(tok, train_users, seed),
                                  "private_only_tokens": private_only_tokens(tok, public_blob)}
                           for name, tok in (("public", public_tok), ("private", private_tok))} | {
                           "private_words": len(_user_words(train_users, seed))},
            "matching_total_epsilon": spent_epsilon(settings(headline), delta, runs=2),
            "epsilons": p["epsilons"], "headline": headline, "delta": delta, "budgets": p["budgets"],
            "plan": p, "profile": profile, "seed": seed}


def _user_words(users: range, seed: int) -> set[str]:
    from nvrepro.fl.users import user_profile

    return {w for u in users for w in user_profile(u, seed).vocabulary}


# --------------------------------------------------------------------------------------------- claims

def _gain(metrics: Mapping[str, Any], better: str, worse: str):
    arms = metrics["arms"]
    return paired_gain(arms[better]["user_loss"], arms[worse]["user_loss"])


def judge_pretraining(metrics: Mapping[str, Any]) -> Judgement:
    parts = {}
    for eps in metrics["epsilons"]:
        if eps is None:
            continue
        gain = _gain(metrics, f"public_{eps_name(eps)}", f"scratch_{eps_name(eps)}")
        if gain is None:
            return not_applicable("fewer than two held-out users")
        parts[f"epsilon_{eps_name(eps)}"] = at_least_threshold(
            gain, 0.0, f"nats/byte scratch - pretrained at epsilon {eps:g}")
    return all_parts(parts)


PRETRAINING = Claim(
    "fl_public_pretraining",
    "Pretraining the on-device model on public text before DP-FedAvg lowers the held-out users' loss "
    "at every epsilon of the grid, against DP-FedAvg from scratch with the same rounds (the paper: public "
    "pretraining improves the privacy-utility trade-off); paired bootstrap over held-out users.",
    judge_pretraining)


def judge_tokenizer(metrics: Mapping[str, Any]) -> Judgement:
    bytes_arm = f"scratch_{eps_name(metrics['headline'])}"
    beats_bytes = _gain(metrics, "tok_public_bpe", bytes_arm)
    near_private = _gain(metrics, "tok_public_bpe", "tok_private_bpe")
    if beats_bytes is None:
        return not_applicable("fewer than two held-out users")
    return all_parts({
        "beats_bytes": at_least_threshold(beats_bytes, 0.0, "nats/byte bytes - public BPE"),
        "near_private": at_least_threshold(near_private, -TOKENIZER_MARGIN, "nats/byte private BPE - public BPE")})


TOKENIZER = Claim(
    "fl_public_tokenizer",
    "At the headline epsilon, from scratch, a BPE tokenizer trained on public text gives a lower held-out "
    "loss per byte than bytes, and is at most 0.05 nats/byte worse than a BPE trained on the users' own "
    "(private, leaking) text: a public tokenizer costs little (the paper uses the LLM's); paired bootstrap "
    "over held-out users.",
    judge_tokenizer)


def judge_distillation(metrics: Mapping[str, Any]) -> Judgement:
    gain = _gain(metrics, "distilled", f"public_{eps_name(metrics['headline'])}")
    if gain is None:
        return not_applicable("fewer than two held-out users")
    return at_least_threshold(gain, 0.0, "nats/byte pretrained directly - distilled, after DP-FL")


DISTILLATION = Claim(
    "fl_distillation",
    "Distilling a larger public model into the on-device model on public text, then DP-FedAvg, beats "
    "pretraining the on-device model directly on the same text for the same steps, at the headline "
    "epsilon (the paper: distillation from LLMs helps); paired bootstrap over held-out users.",
    judge_distillation)


def judge_matching(metrics: Mapping[str, Any]) -> Judgement:
    low, high = min(metrics["budgets"]), max(metrics["budgets"])
    gain = _gain(metrics, f"matching_{low}", f"random_{high}")
    if gain is None:
        return not_applicable("fewer than two held-out users")
    return at_least_threshold(gain, -MATCHING_MARGIN,
                              f"nats/byte random with {high} sentences - matching with {low}, after DP-FL")


MATCHING = Claim(
    "fl_distribution_matching",
    "Public sentences chosen by the DP model's likelihood (distribution matching), the smallest budget "
    "of the sweep, then DP-FedAvg, reach the held-out loss of the largest random selection then "
    "DP-FedAvg, less 0.02 nats/byte (the paper: the same accuracy with far less public data); paired "
    "bootstrap over held-out users.",
    judge_matching)


def start_of(arm: str) -> str | None:
    """The ``before_fl`` entry holding an arm's starting model (``None``: a BPE arm's fresh model)."""
    for prefix in ("public", "distilled", "scratch"):
        if arm.startswith(prefix):
            return prefix
    return arm if arm.startswith(("matching_", "random_")) else None


def summary_text(metrics: Mapping[str, Any]) -> str:
    """Each arm's held-out nats/byte after DP-FL (and before, for pretrained starts), epsilon and speed."""
    lines = [f"{'arm':<18}{'epsilon':>9}{'z':>7}{'before FL':>11}{'after FL':>10}{'upd/s':>8}"]
    for name, a in metrics["arms"].items():
        eps = "inf" if a["epsilon"] is None else f"{a['epsilon']:.2f}"
        key = start_of(name)
        pre = f"{np.mean(metrics['before_fl'][key]):.3f}" if key else "-"
        lines.append(f"{name:<18}{eps:>9}{a['noise_multiplier']:>7.3f}{pre:>11}{a['mean_loss']:>10.3f}"
                     f"{a['client_updates_per_second']:>8.1f}")
    return "\n".join(lines)
