"""monai_lexu.report.docs: result tables and run times in the docs come from a recorded run (issue 10, item 6)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from monai_lexu.report import docs

TABLE = "| metric | GTVp | GTVn |\n|---|---|---|\n| soft Dice | 0.700 ± 0.048 | 0.293 ± 0.012 |"


@pytest.mark.parametrize("seconds, text", [(0.4, "0 s"), (42, "42 s"), (60, "1 min 0 s"), (139.4, "2 min 19 s")])
def test_minutes_seconds(seconds, text):
    assert docs.minutes_seconds(seconds) == text


def test_extract_table_takes_the_first_table_and_names_the_file_without_one():
    text = f"# title\n\n9 images.\n\n{TABLE}\n\nafter\n\n| other |\n|---|"
    assert docs.extract_table(text) == TABLE
    with pytest.raises(ValueError, match=r"x\.md: no Markdown table"):
        docs.extract_table("# no table\n", "x.md")


def _fake_repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "bundles" / "b" / "docs").mkdir(parents=True)
    (root / "README.md").write_text("Quick start: <!-- time: b/qs -->old<!-- /time --> on 2 cores.\n")
    (root / "bundles" / "b" / "docs" / "README.md").write_text(
        "## Results\n\n<!-- results: b/qs -->\nhand-written\n<!-- /results -->\n\nAfter.\n"
    )
    return root


def test_record_runs_the_command_then_render_and_check(tmp_path):
    root = _fake_repo(tmp_path)
    summary = root / "bundles" / "b" / "eval" / "metrics_fold0_summary.md"
    write = f"import pathlib; p = pathlib.Path({str(summary)!r}); p.parent.mkdir(); p.write_text({TABLE!r})"
    path = docs.record_run("qs", root / "bundles" / "b", ["eval/metrics_fold0_summary.md"], [sys.executable, "-c",
                           write], root=root)  # fmt: skip
    record = json.loads(path.read_text())
    assert path == root / "bundles" / "b" / "docs" / "results" / "qs.json"
    assert record["tables"] == {"eval/metrics_fold0_summary.md": TABLE}
    assert record["wall_s"] >= 0 and record["cpu_s"] >= 0 and record["machine"]["cores"] >= 1
    assert record["command"].startswith(sys.executable)

    assert docs.render_all(root, check=True) == [root / "README.md", root / "bundles" / "b" / "docs" / "README.md"]
    assert docs.render_all(root) == [root / "README.md", root / "bundles" / "b" / "docs" / "README.md"]
    bundle_doc = (root / "bundles" / "b" / "docs" / "README.md").read_text()
    assert (
        "hand-written" not in bundle_doc
        and TABLE in bundle_doc
        and bundle_doc.endswith("<!-- /results -->\n\nAfter.\n")
    )
    assert "bundles/b/docs/results/qs.json" in bundle_doc and f"commit {record['commit']}" in bundle_doc
    readme = (root / "README.md").read_text()
    assert (
        readme
        == f"Quick start: <!-- time: b/qs -->{docs.minutes_seconds(record['wall_s'])}<!-- /time --> on 2 cores.\n"
    )
    assert docs.render_all(root, check=True) == []

    # a hand edit of a generated table is caught by check (exit 1, naming the file)
    (root / "bundles" / "b" / "docs" / "README.md").write_text(bundle_doc.replace("0.700", "0.800"))
    proc = subprocess.run([sys.executable, "-m", "monai_lexu.report.docs", "--root", str(root), "check"],
                          capture_output=True, text=True)  # fmt: skip
    assert proc.returncode == 1 and "bundles/b/docs/README.md: differs from its recorded results" in proc.stdout


def test_a_failed_command_records_nothing(tmp_path):
    root = _fake_repo(tmp_path)
    with pytest.raises(subprocess.CalledProcessError):
        docs.record_run(
            "qs", root / "bundles" / "b", ["x.md"], [sys.executable, "-c", "raise SystemExit(3)"], root=root
        )
    assert not (root / "bundles" / "b" / "docs" / "results").exists()


def test_a_missing_record_names_the_document(tmp_path):
    root = _fake_repo(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"README\.md: asks for results 'b/qs' but .*qs\.json does not exist"):
        docs.render_all(root)


def test_the_repository_docs_match_their_records():
    assert docs.render_all(check=True) == []


def test_record_on_the_command_line_runs_the_command_string(tmp_path):
    root = _fake_repo(tmp_path)
    summary = root / "bundles" / "b" / "eval" / "s.md"
    summary.parent.mkdir()
    summary.write_text(TABLE)
    proc = subprocess.run(
        [sys.executable, "-m", "monai_lexu.report.docs", "--root", str(root), "record", "qs", "--bundle",
         str(root / "bundles" / "b"), "--tables", "eval/s.md", "--run", f"{sys.executable} -c 'print(42)'"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "42" in proc.stdout and "rendered" in proc.stdout
    record = json.loads((root / "bundles" / "b" / "docs" / "results" / "qs.json").read_text())
    assert record["command"].endswith("-c 'print(42)'") and TABLE in (root / "bundles/b/docs/README.md").read_text()
