"""The README's commands, in the order written, after a CPU-sized quick start (issue 10, item 1).

Each ``bash`` block of README.md runs in a fresh copy of the repository through :mod:`doc_commands` (see its docstring
for the CPU-sized variant: 1 epoch, the CPU override added to GPU-recipe commands, synthetic stand-ins for the real-data
folders). The first block is the quick start itself (``make quickstart``; ``make test`` as a dry run).
"""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_readme_commands_work_in_order_after_the_quick_start(tmp_path, doc_commands, doc_raw_data):
    work = doc_commands.copy_repository(tmp_path / "repo")
    subst = {**doc_raw_data, "/tmp/": f"{tmp_path}/tmp_"}
    skipped = doc_commands.run_doc(REPO / "README.md", work, subst)
    # what the blocks made: the quick start's model and outputs, the RIGA model, the installed pack, the comparison
    assert (work / "bundles/lexu_hecktor/models/model.pt").is_file()
    assert sorted(p.name for p in (work / "bundles/lexu_hecktor/eval/inference").glob("*_label.nii.gz"))
    assert (work / "bundles/lexu_riga/models/model.pt").is_file()
    assert (tmp_path / "home/bundles/lexu_riga/configs/inference.json").is_file()
    assert (work / "eval/compare").is_dir()
    reasons = [reason for _, reason in skipped]  # blocks not run here say why (and where they are run instead)
    assert "trains every method of both tables with 2 seeds each" in reasons and all(reasons)


def test_every_block_of_every_doc_defines_the_variables_it_uses(doc_commands):
    """Each block runs in its own shell (as a reader pastes it): a `$B` must be set in the same block."""
    import re

    docs = [REPO / "README.md", *sorted((REPO / "bundles").glob("*/docs/README.md"))]
    missing = []
    for doc in docs:
        for block in doc_commands.blocks(doc.read_text(encoding="utf-8")):
            used = set(re.findall(r"\$\{?([A-Za-z_]\w*)", block.text)) - {"HOME", "PWD"}
            defined = set(re.findall(r"^\s*(?:for\s+)?([A-Za-z_]\w*)(?:=|\s+in\s)", block.text, re.M))
            if used - defined:
                missing.append(f"{doc.relative_to(REPO)}:{block.line}: {sorted(used - defined)}")
    assert not missing, "\n".join(missing)
