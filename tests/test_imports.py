"""Import hygiene of the package: generic layers never pull in data-set code, and sub-packages form no cycle.

- Each generic sub-package is imported in a fresh interpreter and ``sys.modules`` is inspected: no
  ``monai_lexu.datasets*`` module, no ``data_prep`` converter and no other data-set module (a module path naming
  a data set) gets imported; ``monai_lexu.transforms`` and ``monai_lexu.data`` do not import each other.
- The ``import`` / ``from`` statements of every module (also the lazy ones inside functions) are parsed with ``ast``;
  the graph of sub-packages they span must be acyclic, and no generic sub-package may depend on
  ``monai_lexu.datasets``.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "monai_lexu"
DATASET_NAMES = ("hecktor", "riga", "jungo", "dicom", "synthetic_petct")
GENERIC = ("data", "transforms", "metrics", "networks", "losses", "inferers", "handlers", "report", "engines")


def _modules_after_import(module: str) -> list[str]:
    code = f"import importlib, json, sys; importlib.import_module({module!r}); print(json.dumps(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    "module",
    [
        "monai_lexu.transforms",
        "monai_lexu.data",
        "monai_lexu.metrics",
        "monai_lexu.networks",
        "monai_lexu.losses",
        "monai_lexu.inferers",
    ],
)
def test_generic_subpackage_imports_no_dataset_code(module):
    loaded = _modules_after_import(module)
    assert module in loaded
    ours = [m for m in loaded if m == "monai_lexu" or m.startswith(("monai_lexu.", "data_prep"))]
    offending = [
        m
        for m in ours
        if m.startswith(("monai_lexu.datasets", "data_prep")) or any(n in m.split(".") for n in DATASET_NAMES)
    ]
    assert not offending, f"importing {module} imported data-set code: {offending}"
    if module == "monai_lexu.transforms":
        assert not [m for m in ours if m == "monai_lexu.data" or m.startswith("monai_lexu.data.")], ours
    if module == "monai_lexu.data":
        assert not [m for m in ours if m.startswith("monai_lexu.transforms")], ours


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imported_modules(path: Path) -> list[tuple[str, int]]:
    """Absolute names of the monai_lexu modules (or attributes) imported anywhere in ``path``, with line numbers."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: list[tuple[str, int]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            out += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            out.append((target, node.lineno))
            out += [(f"{target}.{alias.name}", node.lineno) for alias in node.names]  # `from pkg import submodule`
    return [(m, line) for m, line in out if m == "monai_lexu" or m.startswith("monai_lexu.")]


def _subpackage(module: str) -> str | None:
    """``monai_lexu.<x>...`` -> ``x`` for a sub-package or top-level module ``x`` that exists, else None."""
    parts = module.split(".")
    if len(parts) < 2:
        return None
    top = parts[1]
    return top if (PACKAGE / top).is_dir() or (PACKAGE / f"{top}.py").is_file() else None


def _subpackage_graph() -> dict[str, dict[str, list[str]]]:
    """``{importer: {imported: [evidence "file:line"]}}`` over the sub-packages of monai_lexu."""
    graph: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for path in sorted(PACKAGE.rglob("*.py")):
        source = _subpackage(_module_name(path))
        if source is None:  # monai_lexu/__init__.py
            continue
        graph[source]
        for module, line in _imported_modules(path):
            target = _subpackage(module)
            if target is not None and target != source:
                graph[source][target].append(f"{path.relative_to(REPO)}:{line}")
    return graph


def _find_cycle(graph: dict[str, dict[str, list[str]]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, {})):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_graph_parser_sees_imports():
    graph = _subpackage_graph()
    assert "data" in graph["datasets"]  # converters write the generic datalist
    assert "contract" in graph["transforms"]
    assert _find_cycle({"a": {"b": ["x"]}, "b": {"c": ["y"]}, "c": {"a": ["z"]}}) == ["a", "b", "c", "a"]
    assert _find_cycle({"a": {"b": ["x"]}, "b": {}}) is None


def test_no_import_cycle_between_subpackages():
    graph = _subpackage_graph()
    cycle = _find_cycle(graph)
    if cycle:
        evidence = [f"{a} -> {b}: {graph[a][b][:3]}" for a, b in zip(cycle, cycle[1:])]
        pytest.fail("import cycle between monai_lexu sub-packages:\n" + "\n".join(evidence))


def test_generic_subpackages_never_import_datasets():
    graph = _subpackage_graph()
    offending = {name: graph[name]["datasets"] for name in GENERIC if "datasets" in graph.get(name, {})}
    assert not offending, offending
