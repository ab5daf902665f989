"""The paper-facts data files: validation names the bad field; the table shows both columns."""

import pytest
import yaml

from nvrepro.core.tooling import paper_facts as pf
from nvrepro.core.tooling.validation import ConfigError


def test_hybrid_facts_load_with_the_abstracts_numbers():
    facts = pf.paper_facts("hybrid")
    # the abstract says "up to 3x faster" and that the 47B is "20% faster" than the 56B
    assert facts["speedup_8b_vs_llama_3_1_8b"].value == 3.0
    assert facts["speedup_47b_vs_56b"].value == pytest.approx(1.2)
    assert all(f.unit and f.source and f.what for f in facts.values())


def _write(tmp_path, monkeypatch, entries):
    track = tmp_path / "faketrack"
    track.mkdir()
    (track / "paper_facts.yaml").write_text(yaml.safe_dump({"paper": "x", "facts": entries}))
    monkeypatch.setattr(pf, "PACKAGE_DIR", tmp_path)
    pf.paper_facts.cache_clear()


@pytest.mark.parametrize("entry, field", [
    ({"value": "7.61e9", "unit": "u", "source": "s", "what": "w"}, "facts.k.value"),
    ({"value": 1.0, "unit": "", "source": "s", "what": "w"}, "facts.k.unit"),
    ({"value": 1.0, "unit": "u", "source": "s"}, "facts.k:"),
    ({"value": True, "unit": "u", "source": "s", "what": "w"}, "facts.k.value"),
])
def test_a_bad_entry_names_its_key_and_field(tmp_path, monkeypatch, entry, field):
    _write(tmp_path, monkeypatch, {"k": entry})
    try:
        with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
            pf.paper_facts("faketrack")
    finally:
        pf.paper_facts.cache_clear()


def test_unknown_key_and_track_are_named():
    with pytest.raises(ConfigError, match="not a paper fact"):
        pf.paper_fact("hybrid", "no_such_fact")
    with pytest.raises(ConfigError, match="track"):
        pf.paper_facts("no_such_track")


def test_side_by_side_prints_paper_and_toy_values_in_order():
    text = pf.side_by_side("hybrid", [("speedup_47b_vs_56b", 1.07), ("fp8_loss_gap", None)])
    lines = text.splitlines()
    assert lines[0].split()[-3:] == ["paper", "toy", "unit"]
    assert "1.2" in lines[2] and "1.07" in lines[2]
    assert lines[3].split("  ")[0].startswith("FP8") and " - " in lines[3]
