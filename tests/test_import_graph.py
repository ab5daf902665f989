"""No import cycles inside nvrepro, counting imports inside functions too (a lazy import that
closes a cycle still ties two modules into one), and core never imports a paper package."""

from __future__ import annotations

import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "nvrepro"
PAPERS = tuple(f"nvrepro.{p.name}" for p in PACKAGE.iterdir()
               if p.is_dir() and p.name not in ("core", "__pycache__"))


def module_name(path: pathlib.Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def imports_of(name: str) -> set[str]:
    """The nvrepro modules ``name`` imports anywhere in its source (module or function level)."""
    out = set()
    for node in ast.walk(ast.parse(MODULES[name].read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name in MODULES}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0 and node.module in MODULES:
            # "from pkg import sub" imports the submodule pkg.sub; "from mod import x" imports mod
            subs = {f"{node.module}.{a.name}" for a in node.names} & MODULES.keys()
            out |= subs or {node.module}
            if not subs or len(subs) < len(node.names):
                out.add(node.module)
    out.discard(name)
    return out


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_finder_sees_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_nvrepro_has_no_import_cycle():
    graph = {name: imports_of(name) for name in MODULES}
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))


def test_core_imports_no_paper_package():
    bad = {(n, i) for n in MODULES if n.startswith("nvrepro.core") for i in imports_of(n)
           if i.startswith(PAPERS)}
    assert not bad, sorted(bad)


# Which core roles each role may import (see the map in nvrepro/__init__.py): imports go one way.
ROLES = {
    "tooling": {"tooling"},
    "lm": {"tooling", "lm"},
    "data": {"tooling", "data"},
    "retrieval": {"tooling", "data", "retrieval"},
    "evaluation": {"tooling", "lm", "data", "retrieval", "evaluation"},
    "training": {"tooling", "lm", "data", "retrieval", "evaluation", "training", "vision"},
    "vision": {"tooling", "vision"},
    "multimodal": {"tooling", "lm", "vision", "multimodal"},
}


def role(name: str) -> str | None:
    parts = name.split(".")
    return parts[2] if len(parts) > 2 and parts[1] == "core" else None


def test_core_roles_import_only_downward():
    assert {role(n) for n in MODULES if n.startswith("nvrepro.core.")} == set(ROLES)
    bad = sorted((n, i) for n in MODULES if role(n) for i in imports_of(n)
                 if i.startswith("nvrepro.") and role(i) not in ROLES[role(n)])
    assert not bad, bad


def test_papers_import_no_other_paper():
    bad = sorted((n, i) for n in MODULES for i in imports_of(n)
                 for p in PAPERS if n.startswith(p + ".") or n == p
                 if i.startswith(PAPERS) and not (i == p or i.startswith(p + ".")))
    assert not bad, bad


def third_party_roots(name: str) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(MODULES[name].read_text())):
        if isinstance(node, ast.Import):
            roots |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def test_tooling_does_not_import_lightning():
    bad = sorted(n for n in MODULES if role(n) == "tooling"
                 if third_party_roots(n) & {"lightning", "pytorch_lightning"})
    assert not bad, bad
    # and at run time: the runner and the gallery load without Lightning
    import subprocess
    import sys

    code = ("import sys, nvrepro.core.tooling.runner, nvrepro.core.tooling.gallery, "
            "nvrepro.core.tooling.figures, nvrepro.core.tooling.claims; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('lightning', 'pytorch_lightning')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout
