"""Serve the project's bundles with MONAI Label 0.8.5 on this machine: ``python -m monai_lexu.label serve``.

It runs ``monailabel start_server`` with the app of :mod:`monai_lexu.label.server` and safe defaults: bound to
127.0.0.1, bundles read from a local folder only (no model-zoo lookup, no
SAM2, nothing downloaded), automatic re-scoring off. The bundles are served with their trained weights
(``<bundle>/models/model.pt``); ``--config cpu_small`` merges ``configs/cpu_small.json`` over each bundle's configs,
as ``make quickstart`` trained them. The studies folder holds the images (HECKTOR: ``<Case>__CT.nii.gz`` with
``<Case>__PT.nii.gz`` beside it; RIGA: ``*.png``), the labels (``labels/<tag>/``; raters as tags ``rater1``...) and
the app's work files (``.monai_lexu/``). The process becomes the server (same PID); stop it with SIGINT/SIGTERM.
MONAI Label's settings (environment variables ``MONAI_LABEL_*``, e.g. ``MONAI_LABEL_AUTH_ENABLE=true``) apply.

Examples::

    python -m monai_lexu.label serve --studies studies --bundles lexu_hecktor,lexu_riga
    python -m monai_lexu.label serve --studies studies --bundles lexu_hecktor,lexu_riga --config cpu_small --port 8001
    python -m monai_lexu.label serve --studies studies --bundles lexu_riga --bundle-dir ~/bundles --dry-run

Exit codes: 0 the server stopped normally (or ``--dry-run`` printed the command); 1 refused before starting
(monailabel not installed, a bundle folder missing, the studies path not a folder); 2 usage error.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from monai_lexu.cli_help import HelpFormatter, examples_epilog

__all__ = ["build_command", "build_parser", "main"]

PROG = "python -m monai_lexu.label"
EXIT_CODES = (
    "exit codes: 0 the server stopped normally (or --dry-run printed the command); 1 refused before starting "
    "(monailabel not installed, a bundle missing, the studies path not a folder); 2 usage error."
)
APP_SOURCE = Path(__file__).resolve().parent / "app" / "main.py"


def build_parser(prog: str = PROG) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="MONAI Label server for the monai-lexu bundles: label maps, per-structure uncertainty, "
        "uncertainty-first active learning and training from several raters.",
        epilog=examples_epilog(__doc__, f"{PROG} serve", extra=EXIT_CODES),
        formatter_class=HelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser(
        "serve",
        prog=f"{prog} serve",
        description="Run monailabel start_server with the monai-lexu app: 127.0.0.1, local bundles only, no SAM2, "
        "nothing downloaded. The process becomes the server.",
        epilog=examples_epilog(__doc__, f"{PROG} serve", extra=EXIT_CODES),
        formatter_class=HelpFormatter,
    )
    serve.add_argument("--studies", required=True, help="the studies folder (images, labels/<tag>/); created if absent")
    serve.add_argument("--bundles", required=True, help="comma-separated bundle names, e.g. lexu_hecktor,lexu_riga")
    serve.add_argument(
        "--bundle-dir", default=None, help="folder holding the bundles (default: ./bundles, else this repository's)"
    )
    serve.add_argument(
        "--config", default="", help="override merged where a bundle has it, e.g. cpu_small (configs/cpu_small.json)"
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    serve.add_argument("--app-dir", default=None, help="app folder (default <studies>/.monai_lexu/app)")
    serve.add_argument("--work-dir", default=None, help="training work folders (default <studies>/.monai_lexu)")
    serve.add_argument("--skip-trainers", action="store_true", help="serve inference and active learning only")
    serve.add_argument("--dry-run", action="store_true", help="print the monailabel command and exit")
    serve.add_argument(
        "--conf",
        nargs=2,
        action="append",
        default=[],
        metavar=("KEY", "VALUE"),
        help="further monailabel --conf KEY VALUE pairs passed to the app",
    )
    return parser


def _default_bundle_dir() -> Path:
    local = Path("bundles")
    if local.is_dir():
        return local.resolve()
    return Path(__file__).resolve().parents[2] / "bundles"


def _paths(args: argparse.Namespace) -> tuple[Path, Path, Path, Path]:
    """(studies, work folder, app folder, bundle folder), absolute."""
    studies = Path(args.studies).resolve()
    work = Path(args.work_dir).resolve() if args.work_dir else studies / ".monai_lexu"
    app_dir = Path(args.app_dir).resolve() if args.app_dir else work / "app"
    bundle_dir = Path(args.bundle_dir).expanduser().resolve() if args.bundle_dir else _default_bundle_dir()
    return studies, work, app_dir, bundle_dir


def build_command(args: argparse.Namespace) -> tuple[list[str], dict[str, str]]:
    """The ``monailabel start_server`` command line and environment for ``serve`` (after the checks of ``main``)."""
    studies, work, app_dir, bundle_dir = _paths(args)
    conf = [
        ("models", args.bundles),
        ("bundle_dir", str(bundle_dir)),
        ("config", args.config),
        ("work_dir", str(work)),
        ("zoo_source", "local"),
        ("sam2", "false"),
        ("preload", "false"),
        ("skip_trainers", "true" if args.skip_trainers else "false"),
        *[tuple(kv) for kv in args.conf],
    ]
    cmd = [sys.executable, "-m", "monailabel.main", "start_server", "--app", str(app_dir), "--studies", str(studies)]
    cmd += ["--host", args.host, "--port", str(args.port)]
    for key, value in conf:
        cmd += ["--conf", key, value]
    env = dict(os.environ)
    env.setdefault("MONAI_LABEL_AUTO_UPDATE_SCORING", "false")
    return cmd, env


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _write_app(app_dir: Path) -> None:
    app_dir.mkdir(parents=True, exist_ok=True)
    target = app_dir / "main.py"
    tmp = app_dir / f".main.py.{os.getpid()}.tmp"
    tmp.write_text(APP_SOURCE.read_text())
    os.replace(tmp, target)


def main(argv: Sequence[str] | None = None, prog: str = PROG) -> int:
    import importlib.util

    args = build_parser(prog).parse_args(argv)
    names = [n.strip() for n in args.bundles.split(",") if n.strip()]
    if not names:
        print("error: --bundles names no bundle", file=sys.stderr)
        return 2
    cmd, env = build_command(args)
    _, _, app_dir, bundle_dir = _paths(args)
    missing = [n for n in names if not (bundle_dir / n / "configs" / "metadata.json").is_file()]
    if missing:
        print(f"error: no bundle {', '.join(missing)} in {bundle_dir} (use --bundle-dir)", file=sys.stderr)
        return 1
    studies = Path(args.studies)
    if studies.exists() and not studies.is_dir():
        print(f"error: --studies {studies} is not a folder", file=sys.stderr)
        return 1
    for n in names:
        if not list((bundle_dir / n / "models").glob("**/model.pt")):
            print(f"warning: {bundle_dir / n / 'models'} holds no model.pt: {n} will not be served", file=sys.stderr)
    if not _loopback(args.host):
        print(
            f"warning: binding {args.host}: other machines can reach the server; MONAI Label has no authentication "
            "unless MONAI_LABEL_AUTH_ENABLE=true (see the README, 'Use with MONAI Label')",
            file=sys.stderr,
        )
    if args.dry_run:
        print(shlex.join(cmd))
        return 0
    if importlib.util.find_spec("monailabel") is None:
        print(
            "error: monailabel is not installed in this Python; build the MONAI Label environment with "
            "`make label-env` and run .venv-label/bin/python -m monai_lexu.label serve ...",
            file=sys.stderr,
        )
        return 1
    studies.mkdir(parents=True, exist_ok=True)
    _write_app(app_dir)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, cmd, env)
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
