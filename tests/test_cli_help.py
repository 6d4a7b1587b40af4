"""Every ``python -m`` command: ``--help`` has a description and README-form examples; exit codes as documented."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from monai_lexu.cli_help import examples, examples_epilog

REPO = Path(__file__).resolve().parents[1]

COMMANDS = [
    "data_prep.hecktor",
    "data_prep.riga",
    "data_prep.synthetic",
    "data_prep.synthetic jungo",
    "data_prep.synthetic riga-like",
    "monai_lexu.datasets.hecktor",
    "monai_lexu.datasets.riga",
    "monai_lexu.datasets.riga convert",
    "monai_lexu.datasets.riga synthetic",
    "monai_lexu.datasets.jungo",
    "monai_lexu.compare",
    "monai_lexu.compare uncertainty",
    "monai_lexu.compare fusion",
    "monai_lexu.compare figure",
    "monai_lexu.share",
    "monai_lexu.share pack",
    "monai_lexu.share info",
    "monai_lexu.share verify",
    "monai_lexu.share install",
    "monai_lexu.zoo_check",
    "monai_lexu.zoo_check check",
    "monai_lexu.zoo_check build",
    "monai_lexu.families",
    "monai_lexu.report",
    "monai_lexu.report.docs",
    "monai_lexu.label",
    "monai_lexu.label serve",
]


def run(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], cwd=cwd, capture_output=True, text=True, timeout=300)


def help_sections(text: str) -> tuple[str, list[str]]:
    """(the description paragraph after the usage block, the lines of the ``examples:`` block)."""
    paragraphs = text.split("\n\n")
    description = paragraphs[1] if len(paragraphs) > 1 else ""
    lines = text.splitlines()
    start = lines.index("examples:") if "examples:" in lines else len(lines)
    return description, [line.strip() for line in lines[start + 1 :]]


@pytest.mark.parametrize("command", COMMANDS)
def test_help_has_description_and_examples(command: str) -> None:
    proc = run(*command.split(), "--help")
    assert proc.returncode == 0, proc.stderr
    description, example_lines = help_sections(proc.stdout)
    assert description.strip() and not description.lstrip().startswith(("options:", "positional arguments:"))
    assert any(line.startswith(f"python -m {command.split()[0]}") for line in example_lines), proc.stdout
    assert "python data_prep/" not in proc.stdout  # the README's form only


@pytest.mark.parametrize("command", COMMANDS)
def test_help_states_exit_codes(command: str) -> None:
    proc = run(*command.split(), "--help")
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"exit codes?:", proc.stdout, re.I), proc.stdout


def test_report_exit_codes(tmp_path: Path) -> None:
    proc = run("monai_lexu.report", "--work", str(tmp_path / "missing"), "--out", str(tmp_path / "out"))
    assert proc.returncode == 1 and proc.stderr.startswith("error: ") and "missing" in proc.stderr
    assert not (tmp_path / "out").exists()
    (tmp_path / "work" / "runs").mkdir(parents=True)
    proc = run("monai_lexu.report", "--work", str(tmp_path / "work"), "--method", "CE=" + str(tmp_path / "none*.json"))
    assert proc.returncode == 1 and "expected NAME=GLOB" in proc.stderr
    assert run("monai_lexu.report", "--bogus").returncode == 2


def test_examples_keep_continuation_lines_and_substitute_prog() -> None:
    doc = "Examples::\n\n    python -m a.b x --y 1 \\\n        --z 2\n    python -m a.bc other\n    python -m a.b\n"
    assert examples(doc, "python -m a.b") == ["python -m a.b x --y 1 \\", "    --z 2", "python -m a.b"]
    assert examples(doc, "python -m a.b", "python -m c") == ["python -m c x --y 1 \\", "    --z 2", "python -m c"]
    with pytest.raises(ValueError, match="no example of 'python -m d'"):
        examples_epilog(doc, "python -m d")


@pytest.mark.parametrize("module", ["data_prep.hecktor", "monai_lexu.datasets.hecktor"])
def test_hecktor_missing_root_exits_2(module: str, tmp_path: Path) -> None:
    proc = run(module, "--out", str(tmp_path / "out"))
    assert proc.returncode == 2
    assert "--root is required" in proc.stderr
    assert not (tmp_path / "out").exists()


def test_hecktor_refused_run_exits_1(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    proc = run("data_prep.hecktor", "--root", str(tmp_path), "--out", str(blocker / "out"))
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1].startswith("error: ") and str(blocker) in proc.stderr


@pytest.mark.parametrize("module", [("data_prep.riga",), ("monai_lexu.datasets.riga", "convert")])
def test_riga_usage_error_exits_2_and_missing_root_exits_1(module: tuple[str, ...], tmp_path: Path) -> None:
    assert run(*module, "--out", str(tmp_path / "out")).returncode == 2  # no --root
    proc = run(*module, "--root", str(tmp_path / "missing"), "--out", str(tmp_path / "out"))
    assert proc.returncode == 1
    assert proc.stderr.startswith("error: ") and "missing" in proc.stderr


def test_jungo_refused_fraction_exits_1_usage_exits_2(tmp_path: Path) -> None:
    proc = run("monai_lexu.datasets.jungo", "--out", str(tmp_path / "j"), "--train-fraction", "2")
    assert proc.returncode == 1 and "--train-fraction must be in (0, 1]" in proc.stderr
    assert run("monai_lexu.datasets.jungo").returncode == 2


def test_compare_missing_input_exits_1_usage_exits_2(tmp_path: Path) -> None:
    proc = run(
        "monai_lexu.compare", "figure", "--maps", f"A={tmp_path / 'none'}", "--structures", "disc", "--out", "x.png"
    )
    assert proc.returncode == 1 and "does not exist" in proc.stderr
    assert run("monai_lexu.compare", "figure").returncode == 2


@pytest.mark.parametrize("command", ["info", "verify"])
def test_share_missing_zip_exits_1_usage_exits_2(command: str, tmp_path: Path) -> None:
    proc = run("monai_lexu.share", command, str(tmp_path / "none.zip"))
    assert proc.returncode == 1 and proc.stderr.startswith("error: ") and "none.zip" in proc.stderr
    assert run("monai_lexu.share", command).returncode == 2


def test_zoo_check_unreadable_target_exits_1_usage_exits_2(tmp_path: Path) -> None:
    proc = run("monai_lexu.zoo_check", "check", str(tmp_path / "none.zip"))
    assert proc.returncode == 1 and "none.zip" in proc.stdout + proc.stderr
    assert run("monai_lexu.zoo_check", "check").returncode == 2


def test_families_exit_codes(tmp_path: Path) -> None:
    bundles = tmp_path / "bundles"
    shutil.copytree(REPO / "bundles", bundles, ignore=shutil.ignore_patterns("models", "eval", "data", "*.pt"))
    assert run("monai_lexu.families", "check", "--bundles", str(bundles)).returncode == 0
    written = bundles / "lexu_riga" / "configs" / "train.json"
    written.write_text(written.read_text() + "\n")
    proc = run("monai_lexu.families", "check", "--bundles", str(bundles))
    assert proc.returncode == 1 and "lexu_riga" in proc.stdout
    assert run("monai_lexu.families", "write", "no_such_bundle", "--bundles", str(bundles)).returncode == 2
    (bundles / "lexu_riga" / "family.json").write_text("{}")
    proc = run("monai_lexu.families", "write", "--bundles", str(bundles))
    assert proc.returncode == 2 and proc.stderr.startswith("error: ")
