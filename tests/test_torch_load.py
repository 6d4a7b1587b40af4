"""Every ``torch.load`` of the project reads with ``weights_only=True``, said explicitly.

A checkpoint is a pickle: ``torch.load(weights_only=False)`` runs whatever code the file names, so a bundle's weights
from elsewhere could execute code on load. PyTorch's default has changed between releases, so the argument is given
explicitly everywhere (library, benchmarks, data preparation, bundle scripts and tests). The calls are found by parsing
every ``.py`` file with ``ast``: ``torch.load(...)``, ``<alias of torch>.load(...)`` and ``load(...)`` imported as
``from torch import load``.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ROOTS = ("monai_lexu", "benchmarks", "tests", "data_prep", "bundles")


def _torch_load_calls(tree: ast.AST) -> list[ast.Call]:
    """The calls of ``torch.load`` in ``tree``, however ``torch`` or ``load`` was imported."""
    torch_names, load_names = {"torch"}, set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            torch_names |= {a.asname or a.name for a in node.names if a.name == "torch"}
        elif isinstance(node, ast.ImportFrom) and node.module == "torch":
            load_names |= {a.asname or a.name for a in node.names if a.name == "load"}
    calls = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if (
            isinstance(func, ast.Attribute)
            and func.attr == "load"
            and isinstance(func.value, ast.Name)
            and func.value.id in torch_names
        ) or (isinstance(func, ast.Name) and func.id in load_names):
            calls.append(node)
    return calls


def _weights_only_true(call: ast.Call) -> bool:
    return any(
        k.arg == "weights_only" and isinstance(k.value, ast.Constant) and k.value.value is True for k in call.keywords
    )


def _python_files() -> list[Path]:
    return sorted(p for root in ROOTS for p in (REPO / root).rglob("*.py") if "__pycache__" not in p.parts)


def test_the_scan_finds_the_known_calls():
    # the parser must see the calls it polices: share's loader, the network's weight loader, the bundle tests
    files = {p.relative_to(REPO).as_posix(): p for p in _python_files()}
    for rel in ("monai_lexu/utils.py", "monai_lexu/networks/multihead_unet.py", "tests/bundles/conftest.py"):
        assert _torch_load_calls(ast.parse(files[rel].read_text(encoding="utf-8"))), rel
    aliased = "import torch as th\nfrom torch import load as tl\nth.load(f)\ntl(f, weights_only=True)\nx.load(f)\n"
    calls = _torch_load_calls(ast.parse(aliased))
    assert [(c.lineno, _weights_only_true(c)) for c in calls] == [(3, False), (4, True)]


def test_every_torch_load_passes_weights_only_true():
    offending = []
    for path in _python_files():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        offending += [
            f"{path.relative_to(REPO)}:{c.lineno}" for c in _torch_load_calls(tree) if not _weights_only_true(c)
        ]
    assert not offending, f"torch.load without an explicit weights_only=True: {offending}"
