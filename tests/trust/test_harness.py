"""The harness end to end with oracle adapters (answers written by the perspectives' own safe/unsafe rules), the
registry, the CLI, and the report's JSON round trip."""

import json

import pytest
import yaml

from nvrepro.core.tooling.validation import ConfigError
from nvrepro.trust import registry
from nvrepro.trust.harness import TrustReport, evaluate, settings_for
from nvrepro.trust.lexicon import TOXIC


def keyword_toxicity(texts):
    """An independent stand-in scorer: 0.9 for a text with any insult of the lexicon, else 0.05."""
    return [0.9 if any(w in t.lower().split() or w + "," in t.lower() or w + "." in t.lower() for w in TOXIC)
            else 0.05 for t in texts]


class OracleAdapter:
    """Answers each chat as a perspective's ``ideal_answer`` says ``behaviour`` would; counts what it is asked."""

    def __init__(self, behaviour):
        self.behaviour, self.name, self.asked, self.settings = behaviour, f"oracle-{behaviour}", 0, []
        self.by_chat = {}

    def learn(self, probes):
        for name, ps in probes.items():
            for p in ps:
                self.by_chat[p.messages] = registry.perspective(name).ideal_answer(p, self.behaviour)

    def answer(self, chats, settings):
        self.asked += len(chats)
        self.settings.append(settings)
        return [[self.by_chat[tuple(c)]] * settings.num_samples for c in chats]


@pytest.fixture(scope="module")
def probes():
    return {n: registry.perspective(n).make_probes("test", 0, 1) for n in registry.NAMES}


def test_names_are_the_papers_eight_in_order_and_unknown_ones_are_refused():
    assert registry.NAMES == ("toxicity", "stereotypes", "adversarial_robustness", "ood_robustness",
                              "adversarial_demonstrations", "privacy", "ethics", "fairness")
    assert registry.check_names(["fairness", "toxicity"]) == ("toxicity", "fairness")
    with pytest.raises(ConfigError, match="perspectives: unknown perspective 'honesty'"):
        registry.check_names(["honesty"])


def test_oracles_score_100_when_safe_and_lower_when_unsafe_on_every_perspective(probes, tmp_path):
    reports = {}
    for behaviour in ("safe", "unsafe"):
        adapter = OracleAdapter(behaviour)
        adapter.learn(probes)
        reports[behaviour] = evaluate(adapter, probes=probes, tools={"toxicity": keyword_toxicity},
                                      generation={"toxicity": {"num_samples": 3}})
    # the stand-in scorer gives a clean text 0.05, so the safe model's expected maximum toxicity is 0.05
    assert reports["safe"].scores == {n: pytest.approx(95.0 if n == "toxicity" else 100.0) for n in registry.NAMES}
    assert all(reports["unsafe"].scores[n] < 50 for n in registry.NAMES)
    # the toxicity override reached the adapter: 3 samples per toxicity probe, the perspective's temperature
    assert reports["safe"].settings["toxicity"]["num_samples"] == 3
    assert reports["safe"].settings["toxicity"]["temperature"] == 1.0
    path = reports["unsafe"].save(tmp_path / "r.json")
    again = TrustReport.from_dict(json.loads(path.read_text()))
    assert again.scores == pytest.approx(reports["unsafe"].scores) and again.model == "oracle-unsafe"


def test_a_rerun_with_a_cache_asks_nothing(probes, tmp_path):
    adapter = OracleAdapter("safe")
    adapter.learn(probes)
    chosen = {"ethics": probes["ethics"], "fairness": probes["fairness"]}
    first = evaluate(adapter, ["ethics", "fairness"], probes=chosen, cache_dir=tmp_path)
    asked = adapter.asked
    assert asked == len(probes["ethics"]) + len(probes["fairness"])
    second = evaluate(adapter, ["ethics", "fairness"], probes=chosen, cache_dir=tmp_path)
    assert adapter.asked == asked and second.scores == first.scores
    evaluate(adapter, ["ethics"], probes={"ethics": probes["ethics"]}, cache_dir=tmp_path,
             generation={"ethics": {"max_new_tokens": 5}})  # other settings: asked again
    assert adapter.asked == asked + len(probes["ethics"])


def test_bad_settings_name_the_field():
    with pytest.raises(ConfigError, match="generation.toxicity.top_q"):
        settings_for("toxicity", {"top_q": 0.9})
    with pytest.raises(ConfigError, match="generation.num_samples"):
        settings_for("ethics", {"num_samples": 4})  # greedy decoding gives one answer
    with pytest.raises(ConfigError, match="generation.honesty"):
        evaluate(OracleAdapter("safe"), ["ethics"], generation={"honesty": {}})


def test_cli_writes_a_report_and_a_radar_for_a_saved_model(tmp_path, capsys):
    import torch

    from nvrepro.core.data.tokenizers import ByteTokenizer
    from nvrepro.core.lm.model import build_model
    from nvrepro.trust.adapters import save_nvrepro_model
    from nvrepro.trust.cli import main

    torch.manual_seed(0)
    model = build_model({"pattern": "*-", "d_model": 32, "vocab_size": 260, "max_seq_len": 2048,
                         "attention": {"n_heads": 2, "n_kv_heads": 2, "head_dim": 16},
                         "ffn": {"hidden": 64}})
    checkpoint = save_nvrepro_model(tmp_path / "toy.pt", model, ByteTokenizer())
    config = {"model": {"kind": "nvrepro", "checkpoint": str(checkpoint)},
              "perspectives": ["adversarial_robustness", "ood_robustness", "ethics"], "probes": {"size": 1},
              "generation": {n: {"max_new_tokens": 2} for n in ("adversarial_robustness", "ood_robustness", "ethics")},
              "cache_dir": str(tmp_path / "answers"), "out_dir": str(tmp_path / "out")}
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(config))
    assert main(["--config", str(path)]) == 0
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert list(report["scores"]) == ["adversarial_robustness", "ood_robustness", "ethics"]
    assert all(0 <= s <= 100 for s in report["scores"].values())
    assert (tmp_path / "out" / "radar.png").stat().st_size > 1000
    assert "machine ethics" in capsys.readouterr().out
    path.write_text(yaml.safe_dump({**config, "probes": {"sise": 1}}))
    assert main(["--config", str(path)]) == 2
    assert "probes.sise" in capsys.readouterr().out


def test_every_shipped_config_validates_and_names_real_perspectives():
    from nvrepro.core.tooling.paths import CONFIGS_DIR
    from nvrepro.trust.cli import load_config

    runs = [p for p in sorted((CONFIGS_DIR / "trust").glob("*.yaml")) if p.name != "toy_lm.yaml"]
    assert len(runs) >= 4
    for path in runs:
        config = load_config(path)
        names = registry.check_names(config.perspectives)
        assert set(config.generation) <= set(names) and set(config.sources) <= set(names), path.name
        if config.model["kind"] == "endpoint":
            from nvrepro.trust.adapters import adapter_from_config

            assert adapter_from_config(config.model).name  # built without contacting the server


def test_balanced_test_probes_take_the_same_number_from_every_scenario():
    from collections import Counter

    from nvrepro.trust.harness import balanced_test_probes

    for name in ("privacy", "toxicity", "stereotypes"):
        probes = balanced_test_probes(name, 0, 24)
        counts = Counter(p.scenario for p in probes)
        assert len(set(counts.values())) == 1 and sum(counts.values()) >= 24, (name, counts)
        assert len({p.id for p in probes}) == len(probes)
