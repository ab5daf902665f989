"""The README gallery is generated from the figures' sidecars and kept in step."""

import json

from nvrepro.core.tooling import gallery as status
from nvrepro.core.tooling.runner import REPO_ROOT


def test_readme_gallery_matches_the_figures_sidecars():
    readme = (REPO_ROOT / "README.md").read_text()
    table = status.gallery_markdown(status.collect())
    assert status.readme_with_gallery(readme, table) == readme, \
        "README gallery is stale: run `nvrepro status --write-readme`"


def test_every_figure_has_its_sidecar_and_claim():
    for png in (REPO_ROOT / "figures").glob("*/*.png"):
        data = json.loads(png.with_suffix(".json").read_text())
        assert data["claim"] and "held" in data and "seed" in data, png


def test_gallery_reports_what_held(tmp_path):
    track = tmp_path / "figures" / "demo"
    track.mkdir(parents=True)
    for name, held in (("a", True), ("b", False)):
        (track / f"{name}.png").write_bytes(b"png")
        (track / f"{name}.json").write_text(json.dumps({"claim": f"claim {name}", "held": held}))
    table = status.gallery_markdown(status.collect(tmp_path / "figures"), root=tmp_path)
    assert "| claim a | held |" in table and "| claim b | **did not hold** |" in table
