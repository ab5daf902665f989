"""The papermill runner behind ``nvrepro reproduce``.

    nvrepro reproduce [--profile smoke|paper] [--only TRACK[/NOTEBOOK]] [--fail-fast]
                      [--notebooks-dir DIR] [--build-dir DIR] [--figures-dir DIR]

Discovery: ``<notebooks-dir>/<track>/NN_*.ipynb`` -- tracks in alphabetical order, notebooks
sorted by name within a track (the ``NN_`` prefix gives the reading order). ``--only hybrid``
runs one track, ``--only hybrid/02_why_hybrid`` (or ``hybrid/02``) one notebook.

Execution: each notebook runs in a fresh ``python3`` kernel. jupyter_client replaces a kernelspec
``argv[0]`` of ``python``/``python3`` with ``sys.executable``, so the kernel is the caller's
interpreter (the venv), and the repository root is prepended to the kernel's ``PYTHONPATH`` so it
imports *this* checkout's ``nvrepro`` even when the package is not installed. The kernel's working
directory is the notebook's own folder -- what a student gets when opening it in JupyterLab --
so relative paths in a notebook (e.g. the default ``out_dir = "../../figures/<track>"``) mean the
same in both places.

Parameters injected into the cell tagged ``parameters``: ``profile``, ``seed`` and ``out_dir`` (an
absolute path). In the ``paper`` profile ``out_dir`` is ``<figures-dir>/<track>``; in the ``smoke``
profile it is a fresh temporary folder (removed afterwards), so smoke runs never write into
``figures/``. Executed notebooks are written to ``<build-dir>/<profile>/<track>/<name>.ipynb``.

Failures: a notebook that raises is reported as ``cell N (`first line`) raised Error: message``,
``N`` being the 0-based index among *all* cells of the source notebook (markdown included, the
injected-parameters cell not counted), with the command that reruns only that notebook; the
executed copy keeps the traceback. The other notebooks still run (unless ``--fail-fast``) and
the exit code is 1.

Lost output: a kernel sends a cell's output and its final "idle" status over a ZeroMQ PUB socket,
which *drops* messages once about a thousand wait unsent. A cell that floods that channel (Lightning's
default progress bar redraws on every step) on a busy CPU can lose the "idle" that tells nbclient
the output is complete; nbclient then waits ``iopub_timeout`` seconds (4 by default) and papermill
turns the wait into ``CellTimeoutError: Timeout waiting for IOPub output``, although the cell had
finished and succeeded. Waiting longer cannot help a message that is gone. The runner therefore
waits :data:`IOPUB_PATIENCE` seconds for late output and then carries on: whether a cell
succeeded comes from its execute reply, on another channel, so a failing cell is still reported.
The cause is removed where we own it: the experiments train with the house progress bar
(:mod:`nvrepro.core.training.progress`), which redraws a few times a second at most.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

from nvrepro.core.tooling.paths import REPO_ROOT

PROFILES = ("smoke", "paper")
KERNEL_NAME = "python3"
# Seconds to wait, after a cell's reply, for the rest of its output before carrying on without
# it (module docstring, "Lost output"): enough for a client that has fallen behind a chatty cell
# on a busy CPU to catch up; output that is lost for good costs this once per cell.
IOPUB_PATIENCE = 60


@dataclass
class NotebookResult:
    """The outcome of executing one notebook."""

    track: str
    notebook: Path  # the source notebook
    output: Path  # the executed copy under the build folder
    status: str  # "ok" or "failed"
    seconds: float
    error: str | None = None  # one paragraph naming the failing cell, when status == "failed"
    profile: str = "smoke"

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def discover(notebooks_dir: Path, only: str | None = None) -> dict[str, list[Path]]:
    """``{track: [notebooks in order]}`` for ``<notebooks_dir>/<track>/NN_*.ipynb``.

    ``only``: a track, or ``track/notebook`` where ``notebook`` is a file name or the start of one
    (``hybrid/02``). Raises ``ValueError`` naming the allowed tracks (or that track's notebooks)
    when nothing matches.
    """
    track_only, _, notebook_only = (only or "").partition("/")
    notebooks_dir = Path(notebooks_dir)
    tracks = {
        d.name: sorted(p for p in d.glob("[0-9][0-9]_*.ipynb"))
        for d in sorted(notebooks_dir.iterdir()) if d.is_dir() and not d.name.startswith(".")
    } if notebooks_dir.is_dir() else {}
    tracks = {t: nbs for t, nbs in tracks.items() if nbs}
    if only is not None:
        if track_only not in tracks:
            allowed = ", ".join(tracks) or "(none found)"
            raise ValueError(f"unknown track {track_only!r} for --only; tracks in {notebooks_dir}: {allowed}")
        tracks = {track_only: tracks[track_only]}
        if notebook_only:
            picked = [nb for nb in tracks[track_only] if nb.name.startswith(notebook_only)]
            if len(picked) != 1:
                names = ", ".join(nb.stem for nb in tracks[track_only])
                what = "no" if not picked else "more than one"
                raise ValueError(f"--only {only!r}: {what} notebook of track {track_only!r} matches; "
                                 f"its notebooks: {names}")
            tracks = {track_only: picked}
    return tracks


HEADLESS_ENV = "NVREPRO_HEADLESS"


@contextlib.contextmanager
def _kernel_env() -> Iterator[None]:
    """Let the kernel (a child process) import this checkout's ``nvrepro``; restore afterwards."""
    old = os.environ.get("PYTHONPATH")
    old_headless = os.environ.get(HEADLESS_ENV)
    parts = [str(REPO_ROOT)] + ([old] if old else [])
    os.environ["PYTHONPATH"] = os.pathsep.join(parts)
    os.environ[HEADLESS_ENV] = "1"
    try:
        yield
    finally:
        for key, value in (("PYTHONPATH", old), (HEADLESS_ENV, old_headless)):
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def headless() -> bool:
    """True inside a kernel started by this runner (papermill): no one can move a slider there.

    Notebooks build their ipywidgets explorers only when this is False: displaying a live widget
    under nbclient occasionally never returns, which would hang ``nvrepro reproduce`` and CI.
    """
    return os.environ.get(HEADLESS_ENV) == "1"


def _describe_failure(exc: Exception, notebook: Path) -> str:
    """One line: which cell of the *source* notebook failed, its first line, and the error."""
    from papermill.exceptions import PapermillExecutionError

    if not isinstance(exc, PapermillExecutionError):
        return f"{type(exc).__name__}: {exc}"
    # papermill's cell_index counts its injected-parameters cell; find the cell in the source.
    index = exc.cell_index
    with contextlib.suppress(Exception):
        import nbformat

        cells = nbformat.read(notebook, as_version=4).cells
        index = next(i for i, c in enumerate(cells) if c.cell_type == "code" and c.source == exc.source)
    lines = [ln for ln in (exc.source or "").splitlines() if ln.strip()]
    first = lines[0].strip() if lines else "<empty cell>"
    evalue = str(exc.evalue).strip().splitlines()[0] if str(exc.evalue).strip() else ""
    return f"cell {index} (`{first}`) raised {exc.ename}: {evalue}"


def rerun_command(track: str, notebook: Path, profile: str) -> str:
    """The command that executes only ``notebook`` again, as :func:`reproduce` would."""
    return f"nvrepro reproduce --profile {profile} --only {track}/{notebook.stem}"


def run_notebook(notebook: Path, output: Path, *, profile: str, seed: int, out_dir: Path,
                 track: str = "", timeout: float | None = None,
                 iopub_patience: int = IOPUB_PATIENCE) -> NotebookResult:
    """Execute one notebook with papermill in a fresh kernel (cwd = the notebook's folder).

    ``timeout``: seconds a cell may run (``None``: no limit); ``iopub_patience``: seconds to wait
    for a finished cell's remaining output (module docstring, "Lost output").
    """
    import papermill as pm

    output.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    error = None
    try:
        with _kernel_env():
            pm.execute_notebook(
                str(notebook), str(output),
                parameters={"profile": profile, "seed": seed, "out_dir": str(out_dir)},
                kernel_name=KERNEL_NAME, language="python", cwd=str(notebook.parent), progress_bar=False,
                execution_timeout=timeout, iopub_timeout=iopub_patience, raise_on_iopub_timeout=False,
            )
    except Exception as exc:  # noqa: BLE001 - any failure is reported, the run continues
        error = _describe_failure(exc, notebook)
    seconds = time.perf_counter() - start
    return NotebookResult(track or notebook.parent.name, notebook, output,
                          "ok" if error is None else "failed", seconds, error, profile)


def reproduce(profile: str = "smoke", only: str | None = None, *, seed: int = 0,
              notebooks_dir: Path | str | None = None, build_dir: Path | str | None = None,
              figures_dir: Path | str | None = None, fail_fast: bool = False,
              timeout: float | None = None, progress: bool = True) -> list[NotebookResult]:
    """Run every notebook (or one track's) in ``profile``; return one result per notebook run.

    Notebooks after a failure still run unless ``fail_fast``. See the module docstring for where
    outputs go.
    """
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
    notebooks_dir = Path(notebooks_dir) if notebooks_dir is not None else REPO_ROOT / "notebooks"
    build_dir = Path(build_dir) if build_dir is not None else REPO_ROOT / "build" / "notebooks"
    figures_dir = Path(figures_dir) if figures_dir is not None else REPO_ROOT / "figures"
    tracks = discover(notebooks_dir, only)
    jobs = [(t, nb) for t, nbs in tracks.items() for nb in nbs]

    from tqdm.auto import tqdm

    results: list[NotebookResult] = []
    with tempfile.TemporaryDirectory(prefix="nvrepro-smoke-") as tmp:
        bar = tqdm(jobs, desc=f"reproduce ({profile})", unit="nb", disable=not progress)
        for track, nb in bar:
            bar.set_postfix_str(f"{track}/{nb.name}")
            out_dir = (figures_dir if profile == "paper" else Path(tmp)) / track
            output = build_dir / profile / track / nb.name
            result = run_notebook(nb.resolve(), output.resolve(), profile=profile, seed=seed,
                                  out_dir=out_dir.resolve(), track=track, timeout=timeout)
            results.append(result)
            if not result.ok and fail_fast:
                break
        bar.close()
    return results


def format_table(results: Sequence[NotebookResult]) -> str:
    """A plain-text table: notebook, status, seconds; failures explained underneath."""
    rows = [(f"{r.track}/{r.notebook.name}", r.status, f"{r.seconds:.1f}") for r in results]
    header = ("notebook", "status", "seconds")
    widths = [max(len(x) for x in col) for col in zip(header, *rows)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths[:-1]) + f"  {{:>{widths[-1]}}}"
    lines = [fmt.format(*header), fmt.format(*("-" * w for w in widths))]
    lines += [fmt.format(*row) for row in rows]
    for r in results:
        if not r.ok:
            lines.append(f"FAILED {r.track}/{r.notebook.name}: {r.error}\n  executed copy: {r.output}"
                         f"\n  rerun only it: {rerun_command(r.track, r.notebook, r.profile)}")
    return "\n".join(lines)


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """Add the ``reproduce`` options to ``parser`` (a new one if None); used by the CLI too."""
    p = parser or argparse.ArgumentParser(prog="nvrepro reproduce",
                                          description="Execute the notebooks with papermill.")
    p.add_argument("--profile", choices=PROFILES, default="smoke",
                   help="smoke: seconds, figures to a temp dir; paper: writes figures/<track>/")
    p.add_argument("--only", metavar="TRACK[/NOTEBOOK]", default=None,
                   help="run only this track, or one notebook of it (e.g. hybrid/02_why_hybrid or hybrid/02)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--notebooks-dir", type=Path, default=None, help="default: <repo>/notebooks")
    p.add_argument("--build-dir", type=Path, default=None, help="default: <repo>/build/notebooks")
    p.add_argument("--figures-dir", type=Path, default=None, help="default: <repo>/figures")
    p.add_argument("--fail-fast", action="store_true", help="stop at the first failing notebook")
    p.add_argument("--timeout", type=float, default=None, help="per-cell timeout in seconds")
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point for ``nvrepro reproduce``; returns the process exit code (0: all ran)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        results = reproduce(args.profile, args.only, seed=args.seed,
                            notebooks_dir=args.notebooks_dir, build_dir=args.build_dir,
                            figures_dir=args.figures_dir, fail_fast=args.fail_fast,
                            timeout=args.timeout)
    except ValueError as exc:
        print(f"nvrepro reproduce: error: {exc}", file=sys.stderr)
        return 2
    if not results:
        print("nvrepro reproduce: no notebooks found", file=sys.stderr)
        return 1
    print(format_table(results))
    failed = [r for r in results if not r.ok]
    if args.profile == "paper" and args.figures_dir is None:
        # The README's gallery is generated from the figures just written (nvrepro.core.tooling.gallery).
        from nvrepro.core.tooling import gallery as status

        status.main(["--write-readme"])
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
