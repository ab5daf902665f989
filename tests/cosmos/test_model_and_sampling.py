"""The decoder-only VLM on a hybrid (Mamba-2 + attention) backbone: cached generation with images equals
recomputing the whole sequence every step, sampled groups come back prompt-major and cut at <eos>, and
the log-probabilities of padded rows equal those of each row scored alone."""

import pytest
import torch

from nvrepro.core.multimodal.vlm import VisionLM, VisionLMConfig
from nvrepro.core.tooling.validation import ConfigError
from nvrepro.cosmos.data import ClipQA, collate_prompts
from nvrepro.cosmos.module import GRPOConfig
from nvrepro.cosmos.sampling import response_log_probs, sample_responses

EOS, PAD = 257, 258


def small_model(seed: int = 0) -> VisionLM:
    torch.manual_seed(seed)
    cfg = VisionLMConfig(pattern="M*-", d_model=32, vocab_size=261, max_seq_len=400,
                         attention=dict(n_heads=2, n_kv_heads=2, head_dim=16),
                         mamba=dict(n_heads=2, head_dim=16, d_state=8, n_groups=1, chunk_size=16), ffn=dict(hidden=64),
                         vision=dict(image_size=32, patch_size=8, d_model=16, n_layers=1, n_heads=2))
    return VisionLM(cfg).eval()


def prompts(n: int = 4):
    return collate_prompts([ClipQA(n, "val", tokens_per_frame=4)[i] for i in range(n)])


def test_cached_generation_equals_recomputing_every_step():
    model, batch = small_model(), prompts(1)
    ids = torch.tensor(batch["prompts"])
    out = model.generate(ids, 12, pixel_values=batch["pixel_values"], image_mask=batch["image_mask"])
    naive = ids
    with torch.no_grad():
        for _ in range(12):
            logits = model(naive, pixel_values=batch["pixel_values"], image_mask=batch["image_mask"])
            naive = torch.cat([naive, logits[:, -1].argmax(-1, keepdim=True)], 1)
    assert torch.equal(out, naive)


def test_placeholders_must_match_the_images():
    model, batch = small_model(), prompts(1)
    ids = torch.tensor(batch["prompts"])
    first = int((ids[0] == 260).nonzero()[0])
    with pytest.raises(ValueError, match="placeholders"):  # one placeholder short of the frames' tokens
        model(torch.cat([ids[:, :first], ids[:, first + 1:]], 1), pixel_values=batch["pixel_values"])
    with pytest.raises(ValueError, match="pixel_values"):
        model(ids)


def test_sampled_groups_are_prompt_major_and_equal_one_prompt_at_a_time():
    model, batch = small_model(1), prompts(4)
    greedy = sample_responses(model, batch["prompts"], batch["pixel_values"], batch["image_mask"], group_size=3,
                              max_new_tokens=10, temperature=0.0, seed=0, eos_id=EOS)
    assert len(greedy) == 12
    for p in range(4):
        alone = sample_responses(model, batch["prompts"][p:p + 1], batch["pixel_values"][p:p + 1],
                                 batch["image_mask"][p:p + 1], max_new_tokens=10, temperature=0.0, seed=0, eos_id=EOS)
        assert greedy[3 * p:3 * p + 3] == alone * 3
    sampled = sample_responses(model, batch["prompts"], batch["pixel_values"], batch["image_mask"], group_size=3,
                               max_new_tokens=10, temperature=5.0, seed=0, eos_id=EOS)
    assert all(EOS not in r[:-1] and len(r) <= 10 for r in sampled)
    assert len({tuple(r) for r in sampled}) > 1
    with pytest.raises(ValueError, match="group_size"):
        sample_responses(model, batch["prompts"], batch["pixel_values"], batch["image_mask"], group_size=0,
                         max_new_tokens=2, temperature=1.0, seed=0, eos_id=EOS)


def test_padded_log_probs_equal_each_row_alone():
    model, batch = small_model(2), prompts(3)
    responses = [[65, 66, EOS], [70], [71, 72, 73, 74, EOS]]
    logp, mask = response_log_probs(model, batch["prompts"], responses, batch["pixel_values"], batch["image_mask"], PAD)
    assert mask.sum(1).tolist() == [3, 1, 5]
    for r, response in enumerate(responses):
        ids = torch.tensor([batch["prompts"][r] + response])
        with torch.no_grad():
            full = model(ids, pixel_values=batch["pixel_values"][r:r + 1]).log_softmax(-1)[0]
        start = len(batch["prompts"][r]) - 1
        expected = torch.stack([full[start + k, tok] for k, tok in enumerate(response)])
        torch.testing.assert_close(logp[r, :len(response)].detach(), expected, rtol=1e-4, atol=1e-5)
        assert float(logp[r, len(response):].abs().sum()) == 0.0


def test_grpo_settings_are_validated():
    with pytest.raises(ConfigError, match="grpo.group_size"):
        GRPOConfig(group_size=1)
    with pytest.raises(ConfigError, match="grpo.temperature"):
        GRPOConfig(temperature=0.0)
    with pytest.raises(ConfigError, match="grpo.beta"):
        GRPOConfig(beta=-1.0)


def test_the_image_placeholder_is_never_sampled():
    model, batch = small_model(3), prompts(2)
    head = model.lm_head

    class FavourPlaceholder(torch.nn.Module):  # a head whose argmax is always the placeholder
        def forward(self, x):
            logits = head(x)
            return logits.index_add(-1, torch.tensor([260]), torch.full((*logits.shape[:-1], 1), 1e3))

    model.lm_head = FavourPlaceholder()
    ids = torch.tensor(batch["prompts"][:1])
    with pytest.raises(ValueError, match="placeholders"):  # unsuppressed, the next step would have no image
        model.generate(ids, 3, pixel_values=batch["pixel_values"][:1], image_mask=batch["image_mask"][:1])
    out = sample_responses(model, batch["prompts"], batch["pixel_values"], batch["image_mask"], group_size=2,
                           max_new_tokens=5, temperature=1.0, seed=0, eos_id=EOS)
    assert all(260 not in r for r in out) and all(len(r) == 5 for r in out)
