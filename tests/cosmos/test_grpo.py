"""GRPO math (DeepSeekMath Sec. 4.1, eq. 3-4): advantages and loss on hand-computed examples, the gradient
against a hand-derived expression, clipping, errors, and parity with TRL's ``GRPOTrainer``.

Parity with TRL (trl 1.16, ``trl/trainer/grpo_trainer.py``). What runs TRL's own code:

* loss: ``GRPOTrainer._compute_loss`` itself, on an instance made with ``GRPOTrainer.__new__`` whose attributes
  are set by hand. Only the model forward (``_get_per_token_logps_and_entropies``, replaced on the instance to
  return our per-token log-probs) and the distributed plumbing (``accelerator.gather``/``reduce``: identity)
  are stubbed; the ratio, clipping, k3 KL, masking, aggregation and metrics are TRL's lines. We compare the
  loss, its gradient w.r.t. the log-probs, the ``kl`` metric and ``clip_ratio/region_mean``.
* advantages: ``GRPOTrainer._generate_and_score_completions`` itself, with the generation (``_generate``)
  stubbed to return fixed completion texts and the accelerator/model/tokenizer replaced by minimal stand-ins.
  TRL's ``_calculate_rewards`` calls our two reward functions through its reward-function interface, weighs
  and sums them (``reward_weights``, ``multi_objective_aggregation="sum_then_normalize"``), and computes the
  group mean, ``nanstd`` and the advantages inline. Not TRL's: the reward values per function (ours, by
  design) and the completions. We compare its ``advantages`` output with
  ``group_advantages(rewards(...))``.

Conventions, ours vs TRL's (none changes the numbers compared here):

* sign: both return the loss -J of eq. 3 (minimised);
* std: both use the unbiased (Bessel, N-1) std and add eps = 1e-4 to the std (not to the variance);
  DeepSeekMath specifies neither;
* normalisation: ``aggregation="sequence"`` = TRL ``loss_type="grpo"`` (a response with no masked token
  adds 0 but counts in the mean over responses, in both); ``"token"`` = ``"bnpo"``; TRL's default
  ``loss_type`` is ``"dapo"`` (normalised by the tokens of the whole generation batch), which we do not have;
* gradient accumulation: TRL divides the ``grpo``/``bnpo`` loss by ``current_gradient_accumulation_steps`` in
  training mode; we apply no such normaliser (set to 1 here);
* KL: TRL computes the k3 KL (and its metric) only when beta != 0; we report ``kl`` whenever a reference is
  given, and add the penalty only when beta > 0;
* clip fraction: ours counts the tokens where the clipped term wins (ratio below the band with A < 0 or above
  it with A > 0), TRL's ``clip_ratio/region_mean``; TRL also logs the low and high parts separately;
* TRL also handles NaN (unscorable) rewards by giving them advantage 0; ``group_advantages`` rejects
  non-finite rewards instead.
"""

from __future__ import annotations

import math
from collections import defaultdict
from types import SimpleNamespace

import pytest
import torch

from nvrepro.cosmos.grpo import grpo_loss, group_advantages, kl_k3, token_log_probs
from nvrepro.cosmos.rewards import accuracy_reward, format_reward, rewards


# ---------------------------------------------------------------------------------------------------------
# Advantages
# ---------------------------------------------------------------------------------------------------------

def test_group_advantages_by_hand():
    r"""rewards [1, 0, 0, 1 | 2, 2, 2, 0], G = 4.

    Group 1: mean 0.5, deviations +-0.5, sum of squares 4 * 0.25 = 1, unbiased var 1/3, std 1/sqrt(3);
             A = +-0.5 * sqrt(3) = +-0.8660254 (eps = 0).
    Group 2: mean 1.5, deviations [0.5, 0.5, 0.5, -1.5], sum of squares 0.75 + 2.25 = 3, var 3/3 = 1,
             std 1; A = [0.5, 0.5, 0.5, -1.5].
    """
    r = torch.tensor([1.0, 0, 0, 1, 2, 2, 2, 0])
    s3 = math.sqrt(3) / 2
    expected = torch.tensor([s3, -s3, -s3, s3, 0.5, 0.5, 0.5, -1.5])
    torch.testing.assert_close(group_advantages(r, 4, eps=0.0), expected)

    # Default eps = 1e-4 sits on the std: 0.5 / (1/sqrt(3) + 1e-4) and x / (1 + 1e-4).
    with_eps = torch.tensor([0.5, -0.5, -0.5, 0.5]) / (1 / math.sqrt(3) + 1e-4)
    torch.testing.assert_close(group_advantages(r, 4)[:4], with_eps)
    torch.testing.assert_close(group_advantages(r, 4)[4:], torch.tensor([0.5, 0.5, 0.5, -1.5]) / 1.0001)

    # "batch": group-centred, divided by the std of all 8 rewards: mean 1, deviations
    # [0, -1, -1, 0, 1, 1, 1, -1], sum of squares 6, var 6/7.
    batch_std = math.sqrt(6 / 7)
    centred = torch.tensor([0.5, -0.5, -0.5, 0.5, 0.5, 0.5, 0.5, -1.5])
    torch.testing.assert_close(group_advantages(r, 4, scale="batch", eps=0.0), centred / batch_std)
    torch.testing.assert_close(group_advantages(r, 4, scale="none"), centred)

    # Same rewards read as G = 2: pairs (1,0), (0,1), (2,2), (2,0): std of a pair (a, b) is |a-b|/sqrt(2), so
    # A = +-(|a-b|/2) / (|a-b|/sqrt(2)) = +-1/sqrt(2); the equal pair (2,2) gets 0 even with eps = 0.
    torch.testing.assert_close(group_advantages(r, 2, eps=0.0),
                               torch.tensor([1, -1, -1, 1, 0, 0, 1, -1]) / math.sqrt(2))


def test_equal_rewards_get_zero_advantage():
    r = torch.tensor([3.0, 3.0, 3.0, 0.0, 1.0, 0.0])
    a = group_advantages(r, 3)
    assert torch.equal(a[:3], torch.zeros(3))
    assert torch.isfinite(a).all()
    assert torch.equal(group_advantages(torch.ones(4), 2, eps=1e-4), torch.zeros(4))
    # Integer rewards are promoted to float.
    assert group_advantages(torch.tensor([1, 0, 0, 1]), 2).dtype == torch.float32


def test_group_advantage_errors():
    for bad in (0, 1):
        with pytest.raises(ValueError, match=r"group_size.*at least 2 responses per prompt"):
            group_advantages(torch.zeros(4), bad)
    with pytest.raises(ValueError, match=r"shape \(7,\).*group_size=2"):
        group_advantages(torch.zeros(7), 2)
    with pytest.raises(ValueError, match="1-D"):
        group_advantages(torch.zeros(2, 4), 4)
    with pytest.raises(ValueError, match="scale"):
        group_advantages(torch.zeros(4), 2, scale="global")
    with pytest.raises(ValueError, match="eps"):
        group_advantages(torch.zeros(4), 2, eps=-1.0)
    with pytest.raises(ValueError, match="finite"):
        group_advantages(torch.tensor([0.0, float("nan")]), 2)


# ---------------------------------------------------------------------------------------------------------
# Log-probabilities and KL
# ---------------------------------------------------------------------------------------------------------

def test_token_log_probs_by_hand():
    # Logits [0, log 3] over 2 tokens: softmax [1/4, 3/4].
    logits = torch.tensor([[[0.0, math.log(3)], [0.0, math.log(3)]]], dtype=torch.bfloat16)
    out = token_log_probs(logits, torch.tensor([[0, 1]]))
    assert out.dtype == torch.float32 and out.shape == (1, 2)
    torch.testing.assert_close(out, torch.tensor([[math.log(0.25), math.log(0.75)]]), atol=1e-2, rtol=0)
    with pytest.raises(ValueError, match="tokens"):
        token_log_probs(logits, torch.tensor([[0, 2]]))
    with pytest.raises(ValueError, match="tokens must have shape"):
        token_log_probs(logits, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="logits"):
        token_log_probs(logits[0], torch.tensor([0, 1]))


def test_kl_k3_by_hand():
    # ref - logp = log 2: 2 - log 2 - 1; = 0: 0; = -log 2: 1/2 + log 2 - 1.
    logp = torch.zeros(3)
    ref = torch.tensor([math.log(2), 0.0, -math.log(2)])
    torch.testing.assert_close(kl_k3(logp, ref), torch.tensor([1 - math.log(2), 0.0, math.log(2) - 0.5]))
    with pytest.raises(ValueError, match="same shape"):
        kl_k3(torch.zeros(2), torch.zeros(3))


# ---------------------------------------------------------------------------------------------------------
# Loss on a hand-computed example
# ---------------------------------------------------------------------------------------------------------

def hand_example():
    """Two responses, A = [2, -1], mask [[1, 1, 0], [1, 1, 1]], ratios [[1.5, 0.9, 3.0], [0.5, 1.1, 1.0]]
    (old log-prob log 0.5 everywhere), reference with ref - logp = log 2 on response 0, 0 on response 1."""
    ratios = torch.tensor([[1.5, 0.9, 3.0], [0.5, 1.1, 1.0]])
    old = torch.full((2, 3), math.log(0.5))
    logp = (old + ratios.log()).requires_grad_()
    ref = logp.detach() + torch.tensor([[math.log(2)] * 3, [0.0] * 3])
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]])
    return logp, old, torch.tensor([2.0, -1.0]), mask, ref


def test_loss_by_hand():
    r"""Per-token -min(rA, clip(r, 0.8, 1.2)A):

    response 0 (A = 2):  r = 1.5 -> -min(3.0, 2.4) = -2.4 (clipped);  r = 0.9 -> -1.8;  r = 3.0 masked.
    response 1 (A = -1): r = 0.5 -> -min(-0.5, -0.8) = 0.8 (clipped); r = 1.1 -> 1.1;   r = 1.0 -> 1.0.
    sequence: ((-2.4 - 1.8)/2 + (0.8 + 1.1 + 1.0)/3) / 2 = (-2.1 + 0.96667) / 2 = -0.56667
    token:    (-2.4 - 1.8 + 0.8 + 1.1 + 1.0) / 5 = -1.3 / 5 = -0.26
    clip fraction 2/5. KL per token: 2 - log 2 - 1 = 0.306853 on response 0, 0 on response 1, masked
    mean 2 * 0.306853 / 5 = 0.122741. With beta = 0.1: sequence adds 0.1 * (0.306853 + 0) / 2, token adds
    0.1 * 0.122741.
    """
    logp, old, adv, mask, ref = hand_example()
    k = 1 - math.log(2)
    out = grpo_loss(logp, old, adv, mask)
    torch.testing.assert_close(out.loss, torch.tensor((-2.1 + 2.9 / 3) / 2))
    torch.testing.assert_close(out.clip_fraction, torch.tensor(0.4))
    assert out.kl.item() == 0.0
    out = grpo_loss(logp, old, adv, mask, aggregation="token")
    torch.testing.assert_close(out.loss, torch.tensor(-0.26))

    out = grpo_loss(logp, old, adv, mask, ref_log_probs=ref, beta=0.1)
    torch.testing.assert_close(out.loss, torch.tensor((-2.1 + 2.9 / 3) / 2 + 0.1 * k / 2))
    torch.testing.assert_close(out.kl, torch.tensor(2 * k / 5))
    out = grpo_loss(logp, old, adv, mask, ref_log_probs=ref, beta=0.1, aggregation="token")
    torch.testing.assert_close(out.loss, torch.tensor(-0.26 + 0.1 * 2 * k / 5))
    # A reference with beta = 0 is reported but does not enter the loss.
    out = grpo_loss(logp, old, adv, mask, ref_log_probs=ref)
    torch.testing.assert_close(out.loss, torch.tensor((-2.1 + 2.9 / 3) / 2))
    torch.testing.assert_close(out.kl, torch.tensor(2 * k / 5))

    # Asymmetric band [0.8, 1.6]: r = 1.5 with A = 2 is no longer clipped: -3.0 instead of -2.4.
    out = grpo_loss(logp, old, adv, mask, clip_high=0.6)
    torch.testing.assert_close(out.loss, torch.tensor(((-3.0 - 1.8) / 2 + 2.9 / 3) / 2))
    torch.testing.assert_close(out.clip_fraction, torch.tensor(0.2))
    assert not out.kl.requires_grad and not out.clip_fraction.requires_grad and out.loss.requires_grad


def test_rewards_to_loss_at_ratio_one():
    """From the rewards [1,0,0,1 | 2,2,2,0] to the loss on the first update (ratio 1, beta 0): per token
    -A_i, so the sequence loss is -mean_i(A_i) = 0 (advantages sum to 0 in each group) and the token loss is
    -sum_i |o_i| A_i / sum_i |o_i|. With |o| = [1, 2, 3, 4 | 1, 1, 1, 2] and A (eps = 0) =
    [s, -s, -s, s | 0.5, 0.5, 0.5, -1.5], s = sqrt(3)/2: sum |o_i| A_i = s(1 - 2 - 3 + 4) + (0.5 * 3 - 3) = -1.5,
    sum |o_i| = 15, token loss = 1.5 / 15 = 0.1."""
    adv = group_advantages(torch.tensor([1.0, 0, 0, 1, 2, 2, 2, 0]), 4, eps=0.0)
    lengths = torch.tensor([1, 2, 3, 4, 1, 1, 1, 2])
    mask = (torch.arange(4)[None, :] < lengths[:, None]).long()
    logp = -torch.rand(8, 4)
    torch.testing.assert_close(grpo_loss(logp, logp, adv, mask).loss, torch.tensor(0.0))
    torch.testing.assert_close(grpo_loss(logp, logp, adv, mask, aggregation="token").loss, torch.tensor(0.1))


# ---------------------------------------------------------------------------------------------------------
# Gradients
# ---------------------------------------------------------------------------------------------------------

def test_gradient_at_ratio_one_is_minus_advantage_over_length():
    """At ratio 1 with beta = 0, d loss / d logp_{i,t} = -A_i / |o_i| / B on masked tokens (sequence) and
    -A_i / sum_j |o_j| (token), 0 elsewhere. With a reference and beta, the k3 term adds
    beta * (1 - exp(ref - logp)) times the same weight."""
    torch.manual_seed(0)
    lengths = torch.tensor([4, 1, 3])
    mask = (torch.arange(4)[None, :] < lengths[:, None]).float()
    adv = torch.tensor([0.7, -1.3, 0.4])
    ref = -torch.rand(3, 4)
    for aggregation, weight in (("sequence", 1 / (lengths[:, None] * 3)), ("token", 1 / lengths.sum())):
        logp = (-torch.rand(3, 4)).requires_grad_()
        grpo_loss(logp, logp.detach(), adv, mask, aggregation=aggregation).loss.backward()
        torch.testing.assert_close(logp.grad, -adv[:, None] * mask * weight)

        logp.grad = None
        grpo_loss(logp, logp.detach(), adv, mask, ref_log_probs=ref, beta=0.5,
                  aggregation=aggregation).loss.backward()
        kl_grad = 0.5 * (1 - torch.exp(ref - logp.detach()))
        torch.testing.assert_close(logp.grad, (-adv[:, None] + kl_grad) * mask * weight)


def test_clipping_stops_the_gradient_on_the_advantage_side_only():
    """Ratios [1.5, 0.5] (band [0.8, 1.2]). A > 0: the objective stops rewarding a ratio already above 1.2
    (gradient 0) but still pulls up a ratio of 0.5: d/dlogp (-r A)/2 = -0.5 A / 2. A < 0: the ratio 0.5 below
    0.8 is not pushed further (gradient 0), the ratio 1.5 is: -1.5 A / 2."""
    ratios = torch.tensor([[1.5, 0.5], [1.5, 0.5]])
    adv = torch.tensor([2.0, -3.0])
    logp = ratios.log().requires_grad_()
    out = grpo_loss(logp, torch.zeros(2, 2), adv, torch.ones(2, 2), aggregation="token")
    out.loss.backward()
    expected = torch.tensor([[0.0, -0.5 * 2.0], [-1.5 * -3.0, 0.0]]) / 4  # 4 tokens in the token mean
    torch.testing.assert_close(logp.grad, expected)
    torch.testing.assert_close(out.clip_fraction, torch.tensor(0.5))


def test_loss_errors():
    logp, old, adv, mask, ref = hand_example()
    with pytest.raises(ValueError, match="old_log_probs"):
        grpo_loss(logp, old[:, :2], adv, mask)
    with pytest.raises(ValueError, match="mask"):
        grpo_loss(logp, old, adv, mask.T)
    with pytest.raises(ValueError, match="advantages"):
        grpo_loss(logp, old, adv[:, None], mask)
    with pytest.raises(ValueError, match="log_probs must have shape"):
        grpo_loss(logp[0], old[0], adv, mask[0])
    with pytest.raises(ValueError, match="ref_log_probs is required"):
        grpo_loss(logp, old, adv, mask, beta=0.1)
    with pytest.raises(ValueError, match="beta"):
        grpo_loss(logp, old, adv, mask, ref_log_probs=ref, beta=-0.1)
    with pytest.raises(ValueError, match="clip_low"):
        grpo_loss(logp, old, adv, mask, clip_low=1.0)
    with pytest.raises(ValueError, match="clip_high"):
        grpo_loss(logp, old, adv, mask, clip_high=-0.1)
    with pytest.raises(ValueError, match="aggregation"):
        grpo_loss(logp, old, adv, mask, aggregation="dapo")
    with pytest.raises(ValueError, match="mask must hold only 0 and 1"):
        grpo_loss(logp, old, adv, mask * 2)


# ---------------------------------------------------------------------------------------------------------
# Parity with TRL
# ---------------------------------------------------------------------------------------------------------

def identity(x, **_):
    return x


def trl_trainer():
    """A bare ``GRPOTrainer`` (no ``__init__``) with the attributes its scoring and loss code read."""
    trl_grpo = pytest.importorskip("trl.trainer.grpo_trainer")
    trainer = trl_grpo.GRPOTrainer.__new__(trl_grpo.GRPOTrainer)
    trainer.accelerator = SimpleNamespace(device=torch.device("cpu"), gather=identity, reduce=identity,
                                          gather_for_metrics=identity, process_index=0, num_processes=1,
                                          is_main_process=True, sync_gradients=True)
    trainer.model = SimpleNamespace(training=True, is_gradient_checkpointing=False)
    trainer.state = SimpleNamespace(global_step=0)
    trainer._metrics = {"train": defaultdict(list), "eval": defaultdict(list)}
    trainer.use_vllm = False
    trainer.vllm_importance_sampling_correction = False
    trainer.beta = 0.0
    return trainer


@pytest.mark.parametrize("loss_type, beta, epsilon_high, off_policy", [
    ("grpo", 0.0, 0.2, False),
    ("grpo", 0.0, 0.28, True),
    ("grpo", 0.04, 0.2, True),
    ("bnpo", 0.0, 0.2, True),
    ("bnpo", 0.04, 0.28, True),
])
def test_loss_matches_trl(loss_type, beta, epsilon_high, off_policy):
    trainer = trl_trainer()
    trainer.args = SimpleNamespace(use_bias_correction_kl=False, delta=None, report_to=[])
    trainer.loss_type = loss_type
    trainer.beta = beta
    trainer.epsilon_low, trainer.epsilon_high = 0.2, epsilon_high
    trainer.importance_sampling_level = "token"
    trainer.top_entropy_quantile = 1.0
    trainer.off_policy_mask_threshold = None
    trainer.aux_loss_enabled = False
    trainer._entropy_bonus_enabled = False
    trainer.current_gradient_accumulation_steps = 1

    torch.manual_seed(1)
    b, t = 6, 5
    lengths = torch.tensor([5, 3, 1, 4, 2, 5])
    mask = (torch.arange(t)[None, :] < lengths[:, None]).long()
    logp_trl = (-torch.rand(b, t) * 3).requires_grad_()
    logp_ours = logp_trl.detach().clone().requires_grad_()
    # Off-policy: old log-probs up to 0.6 nats away, so many ratios leave [0.8, 1.2(8)].
    old = logp_trl.detach() + (torch.rand(b, t) - 0.5) * 1.2 if off_policy else None
    ref = logp_trl.detach() + torch.randn(b, t) * 0.3
    adv = group_advantages(torch.tensor([1.0, 0, 2, 1, 1, 0]), 3)

    def fake_forward(model, input_ids, attention_mask, logits_to_keep, **_):
        assert logits_to_keep == t
        return logp_trl, torch.zeros(b, t), None

    trainer._get_per_token_logps_and_entropies = fake_forward
    inputs = {"prompt_ids": torch.zeros(b, 2, dtype=torch.long), "prompt_mask": torch.ones(b, 2, dtype=torch.long),
              "completion_ids": torch.zeros(b, t, dtype=torch.long), "completion_mask": mask, "advantages": adv}
    if old is not None:
        inputs["old_per_token_logps"] = old
    if beta:
        inputs["ref_per_token_logps"] = ref
    trl_loss = trainer._compute_loss(None, inputs)
    trl_loss.backward()

    ours = grpo_loss(logp_ours, logp_ours.detach() if old is None else old, adv, mask,
                     ref_log_probs=ref if beta else None, beta=beta, clip_low=0.2, clip_high=epsilon_high,
                     aggregation={"grpo": "sequence", "bnpo": "token"}[loss_type])
    ours.loss.backward()

    torch.testing.assert_close(ours.loss, trl_loss)
    torch.testing.assert_close(logp_ours.grad, logp_trl.grad)
    metrics = trainer._metrics["train"]
    assert ours.clip_fraction.item() == pytest.approx(metrics["clip_ratio/region_mean"][-1], abs=1e-6)
    if off_policy:
        assert ours.clip_fraction.item() > 0.1  # the band was exercised
    if beta:
        assert ours.kl.item() == pytest.approx(metrics["kl"][-1], rel=1e-5)


COMPLETIONS = [  # 3 prompts x G = 4, prompt-major; correct letters B, A, C
    "<think>r</think><answer>B</answer>", "<think>r</think><answer>C</answer>", "<answer>B</answer>", "B",
    "<think>r</think><answer>A</answer>", "<think>r</think><answer>A</answer>",
    "<think>r</think><answer>A</answer>", "<think>r</think><answer>A</answer>",
    "<answer>C</answer>", "<think></think><answer>C</answer>", "<think>r</think><answer>D</answer>", "none",
]
CORRECT = ["B"] * 4 + ["A"] * 4 + ["C"] * 4


@pytest.mark.parametrize("scale_rewards, weights", [("group", (1.0, 1.0)), ("batch", (1.0, 0.5)),
                                                    ("none", (2.0, 1.0))])
def test_advantages_match_trl(scale_rewards, weights):
    trainer = trl_trainer()
    trainer.args = SimpleNamespace(per_device_train_batch_size=len(COMPLETIONS), steps_per_generation=1,
                                   gradient_accumulation_steps=1, gradient_checkpointing_kwargs=None,
                                   report_to=[])
    trainer.num_iterations = 1  # with the accumulation above: no old-policy forward pass
    trainer.num_generations = 4
    trainer.scale_rewards = scale_rewards
    trainer.multi_objective_aggregation = "sum_then_normalize"
    trainer.environment_factories, trainer.environments, trainer.tools = None, None, None
    trainer._tokenizer = SimpleNamespace(pad_token_id=0)
    trainer.pad_to_multiple_of = None
    trainer.mask_truncated_completions = False
    trainer.log_multimodal = False
    trainer._logs = {"prompt": [], "completion": [], "advantages": [], "images": [],
                     "rewards": defaultdict(list), "extra": defaultdict(list)}
    trainer._pending_extra_logs, trainer._pending_metrics = defaultdict(list), defaultdict(list)

    # The two reward functions, in TRL's interface: the dataset's "correct" column arrives as a keyword.
    def accuracy(prompts, completions, correct, **_):
        return [accuracy_reward(c, k) for c, k in zip(completions, correct)]

    def formatting(prompts, completions, **_):
        return [format_reward(c) for c in completions]

    trainer.reward_funcs = [accuracy, formatting]
    trainer.reward_func_names = ["accuracy", "format"]
    trainer.reward_processing_classes = [None, None]
    trainer.reward_weights = torch.tensor(weights)

    def fake_generate(prompts):
        ids = [[1, 2, 3][: 1 + i % 3] for i in range(len(prompts))]
        return [[5, 6]] * len(prompts), ids, None, list(COMPLETIONS), None, {}, None, None

    trainer._generate = fake_generate
    inputs = [{"prompt": f"question {i // 4}", "correct": c} for i, c in enumerate(CORRECT)]
    out = trainer._generate_and_score_completions(inputs)

    ours = group_advantages(rewards(COMPLETIONS, CORRECT, accuracy_weight=weights[0], format_weight=weights[1]),
                            4, scale=scale_rewards)
    torch.testing.assert_close(ours, out["advantages"])
    assert not torch.equal(ours, torch.zeros_like(ours))
    # Prompt 1: every response right and well-formed -> all rewards equal -> advantage 0 in both.
    assert torch.equal(out["advantages"][4:8], torch.zeros(4))


def test_token_log_probs_match_trl():
    trl_utils = pytest.importorskip("trl.trainer.utils")
    torch.manual_seed(2)
    logits = torch.randn(2, 5, 11)
    tokens = torch.randint(0, 11, (2, 5))
    torch.testing.assert_close(token_log_probs(logits, tokens), trl_utils.selective_log_softmax(logits, tokens))
