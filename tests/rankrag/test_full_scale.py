"""Full-scale RankRAG configs: Llama-3 8B / 70B shapes counted on the meta device against the
published sizes, and the retrieval settings (toy and paper) validated and used."""

import pytest
import yaml

from nvrepro.core.lm.config import model_config_from_yaml
from nvrepro.core.lm.info import count_parameters
from nvrepro.core.tooling.paths import CONFIGS_DIR
from nvrepro.core.tooling.validation import ConfigError
from nvrepro.rankrag.retrieval_settings import RetrievalSettings, build_retriever, load_retrieval_settings

# Published sizes from Meta's model cards: Llama-3-8B 8.03B, Llama-3-70B 70.6B parameters.
CASES = [("rankrag_llama3_8b", 8.03e9), ("rankrag_llama3_70b", 70.6e9)]


@pytest.mark.parametrize("name, published", CASES, ids=[c[0] for c in CASES])
def test_counts_match_llama3(name, published):
    path = CONFIGS_DIR / "rankrag" / f"{name}.yaml"
    total, _ = count_parameters(model_config_from_yaml(path))
    assert abs(total / published - 1) < 0.01, f"{name}: {total / 1e9:.2f}B vs {published / 1e9:.2f}B"
    data = yaml.safe_load(path.read_text())["data"]["init_args"]
    assert data["blend_path"] and data["tokenizer_path"] and data["eos_token"]  # the full-scale switch


def test_retrieval_settings_validate_and_name_the_field(tmp_path):
    paper = load_retrieval_settings(CONFIGS_DIR / "rankrag" / "paper_retrieval.yaml")
    assert (paper.n, paper.k) == (100, 5)  # the facts sheet's N and k
    toy = load_retrieval_settings(CONFIGS_DIR / "rankrag" / "toy_retrieval.yaml")
    assert toy.k <= toy.n and toy.factory == "Flat"
    with pytest.raises(ConfigError, match="retrieval.k"):
        RetrievalSettings(n=3, k=5)
    with pytest.raises(ConfigError, match="retrieval.corpus"):
        RetrievalSettings(corpus="web")
    bad = tmp_path / "bad.yaml"
    bad.write_text("retrieval:\n  n: 10\n  kk: 2\n")
    with pytest.raises(ConfigError, match="kk"):
        load_retrieval_settings(bad)


def test_a_retriever_from_settings_on_a_local_corpus(tmp_path):
    pytest.importorskip("faiss")
    import datasets

    texts = ["The lighthouse keeper lives on the rocky island.", "Bread is baked in a hot oven every morning.",
             "The violin concert starts at eight in the evening."]
    datasets.Dataset.from_dict({"text": texts}).save_to_disk(str(tmp_path / "corpus"))
    settings = RetrievalSettings(paths=[str(tmp_path / "corpus")], n=2, k=1)
    retriever = build_retriever(settings)
    ids, _ = retriever.search(["Who bakes bread in the oven?"], settings.n)
    assert ids[0][0] == 1 and len(retriever) == 3
