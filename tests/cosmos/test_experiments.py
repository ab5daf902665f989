"""The Cosmos claims judged on metrics whose answer is known by construction, the smoke run end to end,
and the exercise checkers."""

import random

from nvrepro.cosmos import exercises
from nvrepro.cosmos import pipeline_experiment as exp
from nvrepro.cosmos.grpo import group_advantages, kl_k3
from nvrepro.cosmos.rewards import format_reward
from nvrepro.cosmos.tasks import TASKS

TASK_NAMES = list(TASKS)


def _runs(p_by_task: dict, n: int = 300, seeds: int = 2, offset: int = 0):
    rng = random.Random(offset)
    tasks = [TASK_NAMES[i % 3] for i in range(n)]
    return [[float(rng.random() < p_by_task[t]) for t in tasks] for _ in range(seeds)], tasks


def _metrics(caption, sft, rl, fmt_sft=1.0, fmt_rl=1.0, rewards=(0.5, 1.5)):
    stages, tasks = {}, None
    for i, (stage, p) in enumerate((("caption", caption), ("sft", sft), ("rl", rl))):
        correct, tasks = _runs(p, offset=i)
        fmt = {"caption": 0.0, "sft": fmt_sft, "rl": fmt_rl}[stage]
        well, _ = _runs({t: fmt for t in TASK_NAMES}, offset=10 + i)
        stages[stage] = {"correct": correct, "well_formed": well}
    rng = random.Random(3)
    curves = [[{"reward": rewards[0] + (rewards[1] - rewards[0]) * k / 49 + rng.gauss(0, 0.05), "kl": 0.01 * k,
                "accuracy": 0.5, "format": 1.0, "length": 40.0, "loss": 0.0} for k in range(50)] for _ in range(2)]
    return {"stages": stages, "tasks": tasks, "curves": curves, "chance": {n: t.chance for n, t in TASKS.items()},
            "seeds": [0, 1]}


ZERO = {t: 0.0 for t in TASK_NAMES}


def test_accuracy_claim_needs_sft_above_chance_and_rl_above_sft():
    good = _metrics(ZERO, {t: 0.8 for t in TASK_NAMES}, {t: 0.95 for t in TASK_NAMES})
    assert exp.ACCURACY.judge(good).held is True
    puzzle_at_chance = _metrics(ZERO, {"arrow_of_time": 0.9, "spatial_puzzle": 0.1, "object_permanence": 0.9},
                                {t: 0.95 for t in TASK_NAMES})
    assert exp.ACCURACY.judge(puzzle_at_chance).held is False
    rl_worse = _metrics(ZERO, {t: 0.9 for t in TASK_NAMES}, {t: 0.6 for t in TASK_NAMES})
    assert exp.ACCURACY.judge(rl_worse).held is False
    same = _metrics(ZERO, {t: 0.8 for t in TASK_NAMES}, {t: 0.8 for t in TASK_NAMES})
    same["stages"]["rl"] = same["stages"]["sft"]
    assert exp.ACCURACY.judge(same).held is None
    assert "spatial_puzzle" in exp.summary_table(good) and "object permanence" in exp.format_category_table(good)


def test_format_and_curve_claims():
    acc = {t: 0.8 for t in TASK_NAMES}
    assert exp.FORMAT.judge(_metrics(ZERO, acc, acc, 1.0, 1.0)).held is True
    assert exp.FORMAT.judge(_metrics(ZERO, acc, acc, 1.0, 0.6)).held is False
    assert exp.CURVES.judge(_metrics(ZERO, acc, acc, rewards=(0.5, 1.5))).held is True
    assert exp.CURVES.judge(_metrics(ZERO, acc, acc, rewards=(1.5, 0.5))).held is False


def test_category_table_pools_by_the_ontology():
    m = _metrics(ZERO, {"arrow_of_time": 1.0, "spatial_puzzle": 0.0, "object_permanence": 1.0}, ZERO)
    rows = {(r["category"], r["subcategory"]): r for r in exp.category_table(m)}
    assert rows[("time", "order")]["sft"] == 1.0 and rows[("space", "relationship")]["sft"] == 0.0
    assert rows[("time", "camera")]["items"] == 0 and rows[("time", "camera")]["sft"] is None


def test_smoke_run_end_to_end():
    result = exp.run("smoke", seed=0, cache=False)
    assert set(result["stages"]) == set(exp.STAGES)
    assert len(result["stages"]["sft"]["correct"][0]) == len(result["tasks"]) == exp.plan("smoke")["num_test"]
    assert len(result["curves"][0]) == exp.plan("smoke")["rl_steps"]
    for claim in (exp.ACCURACY, exp.FORMAT, exp.CURVES):
        assert claim.judge(result).held in (True, False, None)


def test_exercise_checkers_accept_the_reference_and_reject_wrong_answers():
    assert exercises.check_format_reward(format_reward, verbose=False).ok
    assert not exercises.check_format_reward(lambda text: 1.0, verbose=False).ok
    assert exercises.check_advantages(lambda r, g: group_advantages(r, g), verbose=False).ok
    assert not exercises.check_advantages(lambda r, g: r - r.mean(), verbose=False).ok
    assert exercises.check_equal_rewards_advantage(0.0, verbose=False).ok
    assert not exercises.check_equal_rewards_advantage(1.0, verbose=False).ok
    assert exercises.check_kl(kl_k3, verbose=False).ok
    assert not exercises.check_kl(lambda lp, ref: lp - ref, verbose=False).ok
    assert exercises.check_silent_groups(0.7 ** 4 + 0.3 ** 4, verbose=False).ok
    assert not exercises.check_silent_groups(0.7 ** 4, verbose=False).ok
    m = _metrics(ZERO, {"arrow_of_time": 0.9, "spatial_puzzle": 0.3, "object_permanence": 0.9}, ZERO)
    assert exercises.check_hardest_task("spatial_puzzle", m, verbose=False).ok
    assert not exercises.check_hardest_task("arrow_of_time", m, verbose=False).ok
