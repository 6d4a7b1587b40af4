"""Result tables and run times in the docs, written from a recorded run, never by hand.

A *record* is ``bundles/<bundle>/docs/results/<name>.json``: the command that was run, its wall and CPU time, the
commit and the machine it ran on, and the tables it printed (the table part of the evaluation's
``<prefix>_summary.md`` files, verbatim). ``record`` runs the command and writes the record; ``render`` puts the
records into every Markdown file that asks for them; ``check`` fails when a document differs from its records (a
test runs it, so a hand-edited table or time is caught).

In a Markdown file, a generated block and an inline time look like::

    <!-- results: lexu_hecktor/quickstart -->
    ...(written by render: provenance line, then each table)...
    <!-- /results -->

    The quick start took <!-- time: lexu_hecktor/quickstart -->2 min 19 s<!-- /time --> on 2 idle CPU cores.

Examples:

    python -m monai_lexu.report.docs record quickstart --bundle bundles/lexu_hecktor \\
        --tables eval/metrics_fold0_summary.md --run "make -o install quickstart"
    python -m monai_lexu.report.docs render
    python -m monai_lexu.report.docs check
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import re
import resource
import shlex
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from monai_lexu.cli_help import HelpFormatter, examples_epilog

__all__ = [
    "document_paths",
    "extract_table",
    "minutes_seconds",
    "machine_info",
    "record_run",
    "render_document",
    "render_all",
]

BLOCK = re.compile(r"(<!-- results: (?P<key>[\w./-]+) -->\n)(?P<body>.*?)(<!-- /results -->)", re.S)
TIME = re.compile(r"(<!-- time: (?P<key>[\w./-]+) -->)(?P<body>.*?)(<!-- /time -->)")


def repository_root() -> Path:
    """The repository holding this package (the folder with ``bundles/``)."""
    return Path(__file__).resolve().parents[2]


def minutes_seconds(seconds: float) -> str:
    """``139.4`` -> ``"2 min 19 s"``; under a minute ``"42 s"``."""
    seconds = int(round(seconds))
    minutes, secs = divmod(seconds, 60)
    return f"{minutes} min {secs} s" if minutes else f"{secs} s"


def extract_table(markdown: str, source: str = "<text>") -> str:
    """The first Markdown table (consecutive lines starting with ``|``) of ``markdown``.

    Raises:
        ValueError: there is no table; the message names ``source``.
    """
    lines, table = markdown.splitlines(), []
    for line in lines:
        if line.startswith("|"):
            table.append(line.rstrip())
        elif table:
            break
    if not table:
        raise ValueError(f"{source}: no Markdown table in it")
    return "\n".join(table)


def machine_info() -> dict[str, object]:
    """CPU model, usable cores, load average, OS, Python, torch and MONAI versions of this machine."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {}
    for module in ("torch", "monai"):
        try:
            versions[module] = __import__(module).__version__
        except ImportError:
            versions[module] = None
    return {
        "cpu": model,
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "load_average_1min_at_start": round(os.getloadavg()[0], 2),
        "os": platform.platform(),
        "python": platform.python_version(),
        **versions,
    }


def _commit(root: Path) -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root, capture_output=True,
                               text=True, check=True).stdout.strip()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head.stdout.strip()[:12] + (" (with uncommitted changes)" if dirty else "")


def record_run(
    name: str, bundle: str | Path, tables: Sequence[str], command: Sequence[str] | None = None, root: Path | None = None
) -> Path:
    """Run ``command`` (if given) from ``root``, then write ``<bundle>/docs/results/<name>.json``.

    Args:
        name: the record's name, e.g. ``quickstart``; documents refer to it as ``<bundle name>/<name>``.
        bundle: the bundle folder.
        tables: summary Markdown files (relative to the bundle or absolute) whose first table is recorded.
        command: the command to run and time (wall time and the CPU time of it and its children).
        root: working folder of the command (default: the repository root).

    Returns:
        The record path.

    Raises:
        subprocess.CalledProcessError: the command failed (nothing is recorded).
        ValueError: a table file has no table.
    """
    root = root or repository_root()
    bundle = Path(bundle) if Path(bundle).is_absolute() else root / bundle
    run: dict[str, object] = {"machine": machine_info(), "commit": _commit(root)}
    if command:
        start_cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(list(command), cwd=root, check=True)
        wall = time.perf_counter() - start
        end_cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (end_cpu.ru_utime - start_cpu.ru_utime) + (end_cpu.ru_stime - start_cpu.ru_stime)
        run.update(command=shlex.join(command), wall_s=round(wall, 1), cpu_s=round(cpu, 1))
    found = {}
    for t in tables:
        path = Path(t) if Path(t).is_absolute() else bundle / t
        found[str(t)] = extract_table(path.read_text(encoding="utf-8"), str(path))
    record = {"name": name, "bundle": bundle.name, "date": _dt.date.today().isoformat(), **run, "tables": found}
    out = bundle / "docs" / "results" / f"{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(json.dumps(record, indent=4) + "\n", encoding="utf-8")
    os.replace(tmp, out)
    return out


def _load_record(root: Path, key: str, source: Path) -> dict:
    bundle, _, name = key.partition("/")
    path = root / "bundles" / bundle / "docs" / "results" / f"{name}.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise FileNotFoundError(f"{source}: asks for results '{key}' but {path} does not exist") from err


def _provenance(record: dict) -> str:
    m = record["machine"]
    how = f"`{record['command']}`, {minutes_seconds(record['wall_s'])} wall" if record.get("command") else "recorded"
    return (
        f"*Generated by `python -m monai_lexu.report.docs` from `bundles/{record['bundle']}/docs/results/"
        f"{record['name']}.json`: {how}, commit {record['commit']}, {record['date']}, {m['cores']} cores of "
        f"{m['cpu']} (load {m['load_average_1min_at_start']} at start), torch {m['torch']}, MONAI {m['monai']}.*"
    )


def render_document(text: str, root: Path, source: Path) -> str:
    """``text`` with every results block and time span rewritten from its record."""

    def block(match: re.Match) -> str:
        record = _load_record(root, match["key"], source)
        parts = [_provenance(record)] + list(record["tables"].values())
        return match.group(1) + "\n\n".join(parts) + "\n" + match.group(4)

    def span(match: re.Match) -> str:
        record = _load_record(root, match["key"], source)
        if "wall_s" not in record:
            raise ValueError(f"{source}: results '{match['key']}' recorded no command, so it has no time")
        return match.group(1) + minutes_seconds(record["wall_s"]) + match.group(4)

    return TIME.sub(span, BLOCK.sub(block, text))


def document_paths(root: Path) -> list[Path]:
    """The Markdown files that may hold generated blocks: the README and every bundle's ``docs/README.md``."""
    return [root / "README.md", *sorted((root / "bundles").glob("*/docs/README.md"))]


def render_all(root: Path | None = None, check: bool = False) -> list[Path]:
    """Render every document; returns the documents that changed (``check``: that differ, nothing written)."""
    root = root or repository_root()
    changed = []
    for path in document_paths(root):
        text = path.read_text(encoding="utf-8")
        new = render_document(text, root, path)
        if new != text:
            changed.append(path)
            if not check:
                tmp = path.with_name(f".{path.name}.tmp")
                tmp.write_text(new, encoding="utf-8")
                os.replace(tmp, path)
    return changed


def main(argv: Sequence[str] | None = None) -> int:
    """Command line; see the module docstring. Exit codes: 0 ok, 1 a document differs (check) or an error."""
    parser = argparse.ArgumentParser(
        prog="python -m monai_lexu.report.docs",
        description="Write the docs' result tables and run times from recorded runs: record runs a command and keeps "
        "its tables and provenance in bundles/<bundle>/docs/results/<name>.json; render writes them into the "
        "README and the bundle docs; check fails when a document differs from its records.",
        epilog=examples_epilog(__doc__, "python -m monai_lexu.report.docs", extra="exit codes: 0 ok; 1 a document "
                               "differs from its records (check), a failed command or a missing record"),
        formatter_class=HelpFormatter,
    )  # fmt: skip
    parser.add_argument("--root", type=Path, default=None, help="repository root (default: this package's)")
    sub = parser.add_subparsers(dest="action", required=True)
    rec = sub.add_parser("record", help="run a command, keep its tables and provenance", formatter_class=HelpFormatter)
    rec.add_argument("name", help="record name, e.g. quickstart")
    rec.add_argument("--bundle", required=True, help="bundle folder, e.g. bundles/lexu_hecktor")
    rec.add_argument("--tables", nargs="+", required=True, help="summary .md files, relative to the bundle")
    rec.add_argument("--run", default=None, help="the command to run and time (one string, split like a shell)")
    sub.add_parser("render", help="write the records into the documents")
    sub.add_parser("check", help="exit 1 if a document differs from its records")
    args = parser.parse_args(argv)
    try:
        if args.action == "record":
            command = shlex.split(args.run) if args.run else None
            path = record_run(args.name, args.bundle, args.tables, command, root=args.root)
            print(f"recorded {path}")
            changed = render_all(args.root)
        elif args.action == "render":
            changed = render_all(args.root)
        else:
            changed = render_all(args.root, check=True)
            for path in changed:
                print(f"{path}: differs from its recorded results; run python -m monai_lexu.report.docs render")
            return 1 if changed else 0
    except (OSError, ValueError, subprocess.CalledProcessError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    for path in changed:
        print(f"rendered {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
