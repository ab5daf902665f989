"""The figure gallery and claim status, read from the ``figures/<track>/<name>.json`` sidecars.

Every figure is saved with the claim it tests and whether that claim held (see
:func:`nvrepro.core.tooling.figures.save_figure`). The README's gallery is generated from those files,
never written by hand, so it cannot drift from what the code measured:

    nvrepro status                 # print the gallery table
    nvrepro status --write-readme  # rewrite the block between the gallery markers in README.md
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

from nvrepro.core.tooling.paths import REPO_ROOT

START, END = "<!-- gallery:start -->", "<!-- gallery:end -->"
HELD_TEXT = {True: "held", False: "**did not hold**", None: "*undecided*"}


@dataclass
class FigureStatus:
    track: str
    name: str
    png: Path
    claim: str
    held: bool | None
    reason: str = ""


def collect(figures_dir: Path | None = None) -> list[FigureStatus]:
    """One entry per ``<track>/<name>.json`` that has a matching PNG, sorted by track then name."""
    figures_dir = Path(figures_dir or REPO_ROOT / "figures")
    out = []
    for sidecar in sorted(figures_dir.glob("*/*.json")):
        png = sidecar.with_suffix(".png")
        if not png.exists():
            continue
        data = json.loads(sidecar.read_text())
        reason = (data.get("judgement") or {}).get("reason", "")
        out.append(FigureStatus(sidecar.parent.name, sidecar.stem, png, " ".join(str(data.get("claim") or "").split()),
                                data.get("held"), " ".join(str(reason).split())))
    return out


def gallery_markdown(figures: list[FigureStatus], root: Path | None = None) -> str:
    """A markdown table: thumbnail, figure, the claim tested, and whether it held (with the
    judgement's reason: the estimates and intervals it was decided on)."""
    root = Path(root or REPO_ROOT)
    lines = ["| figure | claim tested | result |", "|---|---|---|"]
    for f in figures:
        rel = f.png.relative_to(root).as_posix()
        claim = f.claim.replace("|", "\\|")
        why = f"<br><sub>{f.reason.replace('|', chr(92) + '|')}</sub>" if f.reason else ""
        lines.append(f"| [![{f.name}]({rel})]({rel})<br>`{f.track}/{f.name}` | {claim} | {HELD_TEXT[f.held]}{why} |")
    return "\n".join(lines)


def readme_with_gallery(readme: str, table: str) -> str:
    if START not in readme or END not in readme:
        raise ValueError(f"README.md: gallery markers {START} ... {END} not found")
    head, rest = readme.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{table}\n{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="nvrepro status", description=__doc__.splitlines()[0])
    parser.add_argument("--write-readme", action="store_true", help="rewrite the README's gallery block")
    args = parser.parse_args(argv)
    table = gallery_markdown(collect())
    if args.write_readme:
        path = REPO_ROOT / "README.md"
        path.write_text(readme_with_gallery(path.read_text(), table))
        print(f"wrote the gallery of {table.count(chr(10)) - 1} figures into {path}")
    else:
        print(table)
    return 0
