"""The MONAI model zoo's offline bundle checks, run on a packed bundle (or a bundle folder) before it is shared.

The model zoo (``Project-MONAI/model-zoo``) accepts a bundle when its CI passes: ``ci/verify_bundle.py`` (required
and preferred files, large files downloaded from ``large_files.yml``, version in the changelog, metadata against the
schema named in ``metadata.json``, inference properties of the apps in ``supported_apps``, ``verify_net_in_out``,
``ckpt_export`` and ``torch.jit.load``), the requirement pins of ``ci/get_bundle_requirements.py`` installed with
pip, its pre-commit hooks (``pretty-format-json --indent=4 --no-sort-keys``, end-of-file, trailing whitespace, mixed
line endings, YAML, 1024 KB per committed file, private keys), and per-bundle unit tests that run the train and
inference configs through ``ConfigWorkflow`` with ``check_properties``. This module runs what of that can run
offline, with its own code and MONAI's API, on each target:

========================  ===============================================================================
check                     what passes
========================  ===============================================================================
``files``                 ``configs/metadata.json``, ``LICENSE``, ``configs/inference.json``,
                          ``docs/README.md``, ``docs/data_license.txt``; ``models/model.pt`` (in a pack;
                          in a folder it may instead be named in ``large_files.yml``)
``version``               ``version`` is a key of ``changelog``
``metadata``              MONAI's ``verify_metadata`` against the shipped official schema (md5-checked)
                          whose name the ``schema`` URL ends with, then :func:`share.metadata_problems`
``requirements``          monai, torch and numpy at the metadata versions and every
                          ``required_packages_version`` pin resolve together: ``pip install --dry-run
                          --ignore-installed`` (the registry is needed; successes are cached by pin set)
``format``                every JSON file as ``pretty-format-json --indent=4 --no-sort-keys`` accepts it;
                          every text file ends with one newline, has no trailing whitespace and one kind
                          of line ending; YAML parses; no file but the weights over 1024 KB; no private key
``large-files``           ``large_files.yml`` lists ``path`` (inside the bundle), ``url``, ``hash_val``
                          and ``hash_type`` per file; a listed file that exists has that hash; a pack
                          lists its ``models/model.pt`` and MONAI's ``download_large_files`` passes
``bundle-root``           the configs' ``bundle_root`` resolves to the bundle itself, from a zoo layout
                          (a pack is unpacked to ``<tmp>/<name>/``) and from ``bundles/<name>``, with the
                          current directory elsewhere
``properties``            ``ConfigWorkflow(workflow_type=...).check_properties()`` is empty for ``train``
                          (``train.json``) and ``infer`` (``inference.json``): required ids exist and
                          optional ones are referenced under MONAI's ids
``net-in-out``            ``verify_net_in_out`` of ``network_def`` in ``inference.json``
``torchscript``           ``ckpt_export`` of ``network_def`` with ``models/model.pt``; ``torch.jit.load`` of
                          the result gives the eager network's output; a shipped ``models/model.ts`` loads
========================  ===============================================================================

Not run: the zoo's GPU-only TensorRT/ONNX exports, its model-info version bookkeeping (``models/model_info.json``),
and linting of bundle ``.py`` files (the bundles have none).

Command line::

    python -m monai_lexu.zoo_check check dist/lexu_riga_v0.1.0.zip bundles/lexu_riga [--set dataset_dir=DIR] \\
        [--skip requirements] [--cache-dir DIR]
    python -m monai_lexu.zoo_check build bundles/* [--work build/zoo-check]

``build`` is what ``make zoo-check`` runs: per bundle it takes trained weights (``bundles/<name>/models/model.pt`` or
an earlier build's, when they load into the network of ``inference.json`` + ``cpu_small.json`` or ``inference.json``
alone) or trains them for one iteration of the CPU recipe (``train.json`` + ``cpu_small.json``, data shared by the
bundles of one data set under ``<work>/data``), packs the bundle with :func:`monai_lexu.share.pack_bundle` and runs
every check on the pack, then the folder checks on ``bundles/<name>``.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import logging
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
import warnings
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from monai_lexu.cli_help import HelpFormatter, examples_epilog

__all__ = [
    "CHECKS",
    "CheckResult",
    "Target",
    "PinResolver",
    "bundle_requirements",
    "json_format_problem",
    "text_file_problems",
    "large_files_problems",
    "check_target",
    "build_and_check",
    "main",
]

CHECKS = (
    "files",
    "version",
    "metadata",
    "requirements",
    "format",
    "large-files",
    "bundle-root",
    "properties",
    "net-in-out",
    "torchscript",
)
_MAX_KB = 1024  # the zoo's check-added-large-files --maxkb
_HASH_LENGTHS = {"md5": 32, "sha1": 40, "sha256": 64, "sha512": 128}
_TEXT_SUFFIXES = {".json", ".yml", ".yaml", ".md", ".txt", ".conf", ".py", ".cfg", ".toml", ".sh", ""}
_PRIVATE_KEY_MARKERS = (
    "BEGIN RSA PRIVATE KEY",
    "BEGIN DSA PRIVATE KEY",
    "BEGIN EC PRIVATE KEY",
    "BEGIN OPENSSH PRIVATE KEY",
    "BEGIN PRIVATE KEY",
    "BEGIN ENCRYPTED PRIVATE KEY",
    "BEGIN PGP PRIVATE KEY BLOCK",
    "PuTTY-User-Key-File-2",
)
_UNREACHABLE = (
    "Failed to establish a new connection",
    "Temporary failure in name resolution",
    "Name or service not known",
    "Network is unreachable",
    "Max retries exceeded",
    "ProxyError",
    "ConnectTimeoutError",
    "Connection refused",
    "Read timed out",
)


class CheckFailed(Exception):
    """A check found a problem; the message says what and where."""


@dataclass
class CheckResult:
    """One check on one target: ``status`` is ``"pass"``, ``"fail"`` or ``"skip"``."""

    name: str
    status: str
    detail: str = ""
    seconds: float = 0.0


@dataclass
class Target:
    """A bundle to check: its folder (a pack is unpacked to ``<tmp>/<name>/``) and whether it is a pack."""

    source: Path
    bundle: Path
    packed: bool
    results: list[CheckResult] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.bundle.name

    @property
    def ok(self) -> bool:
        return all(r.status != "fail" for r in self.results)


# --------------------------------------------------------------------------------------------------- helpers
def _load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckFailed(f"{path}: cannot read JSON: {e}") from e


def _metadata(bundle: Path) -> dict:
    meta = bundle / "configs" / "metadata.json"
    if not meta.is_file():
        raise CheckFailed(f"{meta} not found")
    return _load_json(meta)


def _find_config(bundle: Path, stem: str) -> Path | None:
    for suffix in ("json", "yaml", "yml"):
        path = bundle / "configs" / f"{stem}.{suffix}"
        if path.is_file():
            return path
    return None


def _large_files_path(bundle: Path) -> Path | None:
    for suffix in ("yml", "yaml", "json"):
        path = bundle / f"large_files.{suffix}"
        if path.is_file():
            return path
    return None


def _fake_spatial_shape(shape: Sequence[int | str], n: int = 1) -> list[int]:
    """The metadata's ``spatial_shape`` at ``n = p = 1``: ``"32*n"`` -> 32, ``"*"`` -> 1, ints as they are."""
    out = []
    for dim in shape:
        if isinstance(dim, int):
            out.append(dim)
        elif str(dim).strip() == "*":
            out.append(1)
        else:
            out.append(int(eval(str(dim), {"__builtins__": {}}, {"n": n, "p": 1})))  # noqa: S307 - "2**p*n" forms
    return out


def _why(error: BaseException) -> str:
    """The first line of an error and of its root cause (MONAI wraps a failing config expression in a RuntimeError
    whose own message is only the expression)."""
    root = error
    while root.__cause__ is not None:
        root = root.__cause__
    first = " ".join(str(error).split())[:300]
    return first if root is error else f"{first} <- {type(root).__name__}: {' '.join(str(root).split())[:400]}"


# --------------------------------------------------------------------------------------------------- checks
def check_files(target: Target) -> str:
    """Required (``configs/metadata.json``, ``LICENSE``) and preferred (``models/model.pt``,
    ``configs/inference.*``) files of the zoo's ``verify_bundle.py``, plus ``docs/README.md`` and
    ``docs/data_license.txt`` (CONTRIBUTING: the data's license conditions)."""
    bundle = target.bundle
    required = ("configs/metadata.json", "LICENSE", "docs/README.md", "docs/data_license.txt")
    missing = [f for f in required if not (bundle / f).is_file()]
    if _find_config(bundle, "inference") is None:
        missing.append("configs/inference.json")
    note = ""
    if not (bundle / "models" / "model.pt").is_file():
        listed = _listed_large_files(bundle)
        if target.packed or "models/model.pt" not in listed:
            missing.append("models/model.pt" + ("" if target.packed else " (nor named in large_files.yml)"))
        else:
            note = "models/model.pt is not here; large_files.yml names where it comes from"
    if missing:
        raise CheckFailed("missing: " + ", ".join(missing))
    return note


def check_version(target: Target) -> str:
    """``version`` is a key of ``changelog`` (the zoo's ``verify_version_changes``)."""
    meta = _metadata(target.bundle)
    for key in ("version", "changelog"):
        if key not in meta:
            raise CheckFailed(f"'{key}' is missing in configs/metadata.json")
    if meta["version"] not in meta["changelog"]:
        raise CheckFailed(f"version {meta['version']!r} has no entry in 'changelog'")
    return f"version {meta['version']}"


def check_metadata(target: Target) -> str:
    """MONAI's ``verify_metadata`` against the shipped official schema, then the project's stricter rules."""
    from monai.bundle import verify_metadata

    from monai_lexu.share import SCHEMA_FILE, SCHEMA_MD5, md5sum, metadata_problems

    meta = _metadata(target.bundle)
    url = str(meta.get("schema", ""))
    if not url.endswith("/" + SCHEMA_FILE.name):
        raise CheckFailed(f"'schema' is {url!r}: the shipped (and checked) schema is {SCHEMA_FILE.name}")
    if md5sum(SCHEMA_FILE) != SCHEMA_MD5:
        raise CheckFailed(f"{SCHEMA_FILE} was edited (md5 differs from the published file); restore it")
    with tempfile.TemporaryDirectory() as tmp:
        schema = Path(tmp) / "schema.json"  # verify_metadata "downloads" nothing when the file exists
        schema.write_bytes(SCHEMA_FILE.read_bytes())
        try:
            verify_metadata(
                meta_file=str(target.bundle / "configs" / "metadata.json"),
                filepath=str(schema),
                hash_val=SCHEMA_MD5,
                hash_type="md5",
            )
        except ValueError as e:
            raise CheckFailed(str(e).strip()) from e
    problems = metadata_problems(meta)
    if problems:
        raise CheckFailed("; ".join(problems))
    return f"valid against {SCHEMA_FILE.name}"


def bundle_requirements(metadata: Mapping[str, Any]) -> list[str]:
    """The pins the zoo's CI installs for a bundle: ``monai==``, ``torch==``, ``numpy==`` the metadata versions,
    then every ``optional_packages_version`` / ``required_packages_version`` entry as ``name==version``."""
    reqs = []
    for key, package in (("monai_version", "monai"), ("pytorch_version", "torch"), ("numpy_version", "numpy")):
        if key in metadata:
            reqs.append(f"{package}=={metadata[key]}")
    for key in ("optional_packages_version", "required_packages_version"):
        for name, version in (metadata.get(key) or {}).items():
            reqs.append(f"{name}=={version}")
    return reqs


class PinResolver:
    """Resolve requirement pins with ``pip install --dry-run --ignore-installed`` and cache the successes.

    ``--ignore-installed`` makes pip resolve as in an empty environment (of this Python and platform), so no
    throw-away venv is needed; nothing is installed. A successful resolution is stored in ``cache_dir`` under a key
    of the sorted pins, the Python version and the platform, so an unchanged pin set is not resolved again.

    Args:
        cache_dir: where successes are cached; ``None``: no cache.
        timeout: pip's network timeout per request, in seconds.
    """

    def __init__(self, cache_dir: str | os.PathLike | None = None, timeout: int = 30):
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.timeout = timeout
        self._known: dict[str, str] = {}

    def _key(self, reqs: Sequence[str]) -> str:
        text = "\n".join(sorted(set(reqs))) + f"\npython {sys.version_info[0]}.{sys.version_info[1]}"
        text += f"\n{sys.platform} {platform.machine()}"
        return hashlib.sha256(text.encode()).hexdigest()[:24]

    def _cached(self, key: str) -> str | None:
        if key in self._known:
            return self._known[key]
        if self.cache_dir is not None and (self.cache_dir / f"{key}.json").is_file():
            try:
                return json.loads((self.cache_dir / f"{key}.json").read_text())["summary"]
            except (OSError, ValueError, KeyError):
                return None
        return None

    def _remember(self, key: str, reqs: Sequence[str], summary: str) -> None:
        self._known[key] = summary
        if self.cache_dir is not None:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            record = {"requirements": sorted(set(reqs)), "summary": summary, "time": time.strftime("%Y-%m-%d %H:%M")}
            (self.cache_dir / f"{key}.json").write_text(json.dumps(record, indent=4) + "\n")

    def resolve(self, reqs: Sequence[str]) -> str:
        """Resolve ``reqs`` together.

        Returns:
            A one-line summary (``"resolved N packages (cached)"``).

        Raises:
            CheckFailed: the pins conflict or a pin is on no index (pip's reason is quoted), or pip cannot reach the
                package index (then nothing was checked).
        """
        key = self._key(reqs)
        cached = self._cached(key)
        if cached is not None:
            return cached + " (cached)"
        with tempfile.TemporaryDirectory() as tmp:
            req_file, report = Path(tmp) / "requirements.txt", Path(tmp) / "report.json"
            req_file.write_text("\n".join(reqs) + "\n")
            cmd = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet"]
            cmd += ["--disable-pip-version-check", "--timeout", str(self.timeout), "--retries", "1"]
            cmd += ["--report", str(report), "-r", str(req_file)]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            output = proc.stdout + proc.stderr
            if proc.returncode != 0 or not report.is_file():
                reason = _pip_reason(output)
                if any(marker in output for marker in _UNREACHABLE):
                    raise CheckFailed(
                        "pip cannot reach the package index, so the pins were NOT checked "
                        f"({' '.join(reason)[:300]}); run again with access to PyPI or pass --skip requirements"
                    )
                raise CheckFailed(f"the pins {reqs} do not resolve together: " + " ".join(reason)[:1500])
            installed = json.loads(report.read_text()).get("install", [])
        summary = f"{len(reqs)} pins resolve together ({len(installed)} packages with dependencies)"
        self._remember(key, reqs, summary)
        return summary

    def prime(self, pin_sets: Sequence[Sequence[str]]) -> None:
        """Resolve the union of several pin sets once; on success every subset is known to resolve too (exact pins
        that install together also install in part). On failure nothing is recorded (each set is resolved alone)."""
        union = sorted({r for reqs in pin_sets for r in reqs})
        names = [re.split(r"[=<>!~ ]", r, maxsplit=1)[0].lower().replace("_", "-") for r in union]
        if len(pin_sets) < 2 or len(set(names)) != len(names):
            return
        try:
            summary = self.resolve(union)
        except CheckFailed:
            return
        for reqs in pin_sets:
            key = self._key(reqs)
            if self._cached(key) is None:
                self._remember(key, reqs, f"{len(reqs)} pins resolve together (within: {summary.split(' (')[0]})")


def _pip_reason(output: str) -> list[str]:
    """pip's own explanation of a failed resolution: its ERROR lines (without the list of versions it ignored for
    other Pythons) and the "conflict is caused by" block."""
    lines, keep, block = output.splitlines(), [], False
    for line in lines:
        if line.startswith("ERROR") and "Ignored the following versions" not in line:
            keep.append(line.strip())
        elif "The conflict is caused by" in line:
            block = True
            keep.append(line.strip())
        elif block and line.strip() and not line.startswith(("To fix", "1.", "2.", "Additionally")):
            keep.append(line.strip())
        elif block:
            block = False
    return keep or lines[-3:]


def check_requirements(target: Target, resolver: PinResolver) -> str:
    """Every pin the zoo's CI installs for the bundle resolves together with pip."""
    reqs = bundle_requirements(_metadata(target.bundle))
    if not reqs:
        raise CheckFailed("metadata.json pins no package (monai_version, pytorch_version, numpy_version, ...)")
    return resolver.resolve(reqs)


def json_format_problem(path: str | os.PathLike) -> str | None:
    """Why ``pretty-format-json --indent=4 --no-sort-keys`` would reject ``path`` (``None``: it accepts it).

    The hook parses the file (text mode, so ``\\r\\n`` reads as ``\\n``) and requires it to equal
    ``json.dumps(obj, indent=4)`` (key order kept, non-ASCII characters escaped) plus one final newline. Duplicate
    keys can never match (the parsed object keeps one of them) and are named as such.
    """
    path = Path(path)
    with open(path, encoding="utf-8") as f:
        try:
            text = f.read()
        except UnicodeDecodeError as e:
            return f"not UTF-8 text: {e}"

    duplicates: list[str] = []

    def pairs(items: list[tuple[str, Any]]) -> dict:
        seen = set()
        for key, _ in items:
            if key in seen:
                duplicates.append(key)
            seen.add(key)
        return dict(items)

    try:
        obj = json.loads(text, object_pairs_hook=pairs)
    except json.JSONDecodeError as e:
        return f"not valid JSON: {e}"
    if duplicates:
        return f"duplicate keys {sorted(set(duplicates))}"
    expected = json.dumps(obj, indent=4) + "\n"
    if text == expected:
        return None
    if text.rstrip("\n") == expected.rstrip("\n"):
        return "must end with exactly one newline" if text.endswith("\n") else "no newline at the end of the file"
    got, want = text.splitlines(), expected.splitlines()
    for number, (a, b) in enumerate(zip(got, want), start=1):
        if a != b:
            return f"not 4-space pretty JSON: line {number} is {a.rstrip()[:70]!r}, expected {b.rstrip()[:70]!r}"
    return f"not 4-space pretty JSON: {len(got)} lines, expected {len(want)}"


def text_file_problems(path: str | os.PathLike) -> list[str]:
    """What the zoo's text hooks (end-of-file-fixer, trailing-whitespace, mixed-line-ending, detect-private-key,
    check-yaml) find in ``path``; an empty list when none. Binary files (NUL byte or not UTF-8) are not text."""
    path = Path(path)
    data = path.read_bytes()
    if b"\0" in data:
        return []
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return []
    problems = []
    if data and not data.endswith(b"\n"):
        problems.append("no newline at the end of the file")
    elif data and (data.endswith(b"\n\n") or data.endswith(b"\n\r\n") or not data.strip(b"\r\n")):
        problems.append("ends with blank lines")
    kinds = ("\r\n" in text, "\r" in text.replace("\r\n", ""), "\n" in text.replace("\r\n", ""))
    if sum(kinds) > 1:
        problems.append("mixed line endings")
    trailing = [i for i, line in enumerate(text.splitlines(), start=1) if line != line.rstrip(" \t")]
    if trailing:
        problems.append(f"trailing whitespace on line(s) {trailing[:5]}")
    if any(marker in text for marker in _PRIVATE_KEY_MARKERS):
        problems.append("contains a private key")
    if path.suffix in (".yml", ".yaml"):
        import yaml

        try:
            list(yaml.safe_load_all(text))
        except yaml.YAMLError as e:
            problems.append(f"not valid YAML: {str(e).splitlines()[0]}")
    return problems


def check_format(target: Target) -> str:
    """The zoo's pre-commit hooks on every file of the bundle (weights under ``models/`` excepted)."""
    problems = []
    files = sorted(p for p in target.bundle.rglob("*") if p.is_file())
    checked = 0
    for path in files:
        rel = path.relative_to(target.bundle).as_posix()
        if rel.startswith("models/") or any(part.startswith(".") or part == "__pycache__" for part in Path(rel).parts):
            continue
        if rel.split("/", 1)[0] in ("data", "eval", "runs"):
            continue  # outputs of local runs: never packed, never committed
        checked += 1
        if path.stat().st_size > _MAX_KB * 1024:
            problems.append(f"{rel}: {path.stat().st_size // 1024} KB, over the zoo's {_MAX_KB} KB per file")
        if path.suffix == ".json":
            problem = json_format_problem(path)
            if problem:
                problems.append(f"{rel}: {problem}")
        if path.suffix in _TEXT_SUFFIXES or path.name == "LICENSE":
            problems += [
                f"{rel}: {p}" for p in text_file_problems(path) if "newline" not in p or path.suffix != ".json"
            ]
        if os.access(path, os.X_OK) and not target.packed and not path.read_bytes().startswith(b"#!"):
            problems.append(f"{rel}: executable without a shebang")
    if problems:
        raise CheckFailed("; ".join(problems))
    return f"{checked} files"


def _listed_large_files(bundle: Path) -> dict[str, dict]:
    path = _large_files_path(bundle)
    if path is None:
        return {}
    try:
        from monai.bundle import ConfigParser

        entries = ConfigParser.load_config_file(str(path)).get("large_files", [])
    except Exception:
        return {}
    return {str(e["path"]): e for e in entries if isinstance(e, Mapping) and "path" in e}


def large_files_problems(bundle: str | os.PathLike, require_weights: bool = False) -> list[str]:
    """What is wrong with the bundle's ``large_files.yml`` (``.yaml``/``.json``); an empty list when nothing.

    Each entry needs ``path`` (relative, inside the bundle), ``url`` (http/https), ``hash_type`` (md5, sha1, sha256,
    sha512) and ``hash_val`` (hex of that hash, or empty when the file is not at hand); a listed file that exists
    must have that hash. With ``require_weights`` (a pack) ``models/model.pt`` must be listed with its hash.
    """
    from monai.bundle import ConfigParser

    bundle = Path(bundle).resolve()
    path = _large_files_path(bundle)
    if path is None:
        return ["no large_files.yml: the zoo needs it to say where models/model.pt comes from"]
    try:
        content = ConfigParser.load_config_file(str(path))
    except Exception as e:
        return [f"{path.name}: cannot be read: {e}"]
    entries = content.get("large_files") if isinstance(content, Mapping) else None
    if not isinstance(entries, list) or not entries:
        return [f"{path.name}: needs a non-empty list 'large_files'"]
    problems = []
    seen = set()
    for i, entry in enumerate(entries):
        where = f"{path.name} entry {i}"
        if not isinstance(entry, Mapping):
            problems.append(f"{where}: not a mapping")
            continue
        missing = [k for k in ("path", "url", "hash_val", "hash_type") if k not in entry]
        if missing:
            problems.append(f"{where}: missing {missing}")
            continue
        rel = str(entry["path"])
        seen.add(rel)
        target = (bundle / rel).resolve()
        if Path(rel).is_absolute() or not target.is_relative_to(bundle):
            problems.append(f"{where}: path {rel!r} is outside the bundle")
            continue
        if not re.match(r"^https?://[^/\s]+/\S*$", str(entry["url"])):
            problems.append(f"{where}: url {entry['url']!r} is not an http(s) URL")
        hash_type, hash_val = str(entry["hash_type"]).lower(), str(entry["hash_val"]).lower()
        if hash_val:
            if hash_type not in _HASH_LENGTHS:
                problems.append(f"{where}: hash_type {entry['hash_type']!r} is not one of {sorted(_HASH_LENGTHS)}")
                continue
            if not re.fullmatch(rf"[0-9a-f]{{{_HASH_LENGTHS[hash_type]}}}", hash_val):
                problems.append(f"{where}: hash_val {entry['hash_val']!r} is not a {hash_type} hex digest")
                continue
            if target.is_file():
                digest = hashlib.new(hash_type, target.read_bytes()).hexdigest()
                if digest != hash_val:
                    problems.append(f"{where}: {rel} has {hash_type} {digest}, the file says {hash_val}")
        elif hash_type and hash_type not in _HASH_LENGTHS:
            problems.append(f"{where}: hash_type {entry['hash_type']!r} is not one of {sorted(_HASH_LENGTHS)}")
        elif require_weights and rel == "models/model.pt":
            problems.append(f"{where}: a pack must give the hash of its models/model.pt")
    if require_weights and "models/model.pt" not in seen:
        problems.append(f"{path.name}: does not name models/model.pt")
    return problems


def check_large_files(target: Target) -> str:
    """``large_files.yml`` is well formed; for a pack MONAI's ``download_large_files`` also passes (offline: every
    listed file is at hand with the listed hash, so it downloads nothing)."""
    problems = large_files_problems(target.bundle, require_weights=target.packed)
    if problems:
        raise CheckFailed("; ".join(problems))
    if not target.packed:
        return "well formed"
    from monai.bundle import download_large_files

    try:
        download_large_files(bundle_path=str(target.bundle))
    except Exception as e:
        raise CheckFailed(f"monai.bundle download_large_files failed: {e}") from e
    return "well formed; download_large_files finds every file at hand"


def _workflow(target: Target, workflow_type: str, config: Path, overrides: Mapping[str, Any]):
    from monai.bundle import ConfigWorkflow

    workflow = ConfigWorkflow(
        workflow_type=workflow_type,
        config_file=str(config),
        meta_file=str(target.bundle / "configs" / "metadata.json"),
        logging_file=str(target.bundle / "configs" / "logging.conf"),
        **dict(overrides),
    )
    workflow.initialize()
    return workflow


def check_bundle_root(target: Target, scratch: Path) -> str:
    """``bundle_root`` of ``inference.json`` and ``train.json`` resolves to the bundle itself.

    Each config is run with ``monai.bundle.run`` (as ``python -m monai.bundle run --config_file <bundle>/configs/...``
    does) with an added run id that only records ``@bundle_root``: nothing is overridden, and the current directory
    is an empty folder elsewhere, so a pack sitting in the zoo layout ``<tmp>/<name>/`` must find itself."""
    from monai.bundle import run

    work = scratch / "cwd"
    work.mkdir(parents=True, exist_ok=True)
    old = os.getcwd()
    found = {}
    try:
        os.chdir(work)
        for stem in ("inference", "train"):
            config = _find_config(target.bundle, stem)
            if config is None:
                continue
            probe = scratch / f"{stem}_bundle_root.txt"
            run(
                config_file=str(config),
                meta_file=str(target.bundle / "configs" / "metadata.json"),
                logging_file=False,
                run_id="zoo_check_bundle_root",
                init_id="zoo_check_no_init",
                final_id="zoo_check_no_final",
                # no "import" in the expression: MONAI parses such expressions as import statements first
                zoo_check_bundle_root=f"$open({str(probe)!r}, 'w').write(str(@bundle_root))",
            )
            found[stem] = probe.read_text()
    except Exception as e:
        raise CheckFailed(f"bundle_root does not resolve with the current directory {work}: {e}") from e
    finally:
        os.chdir(old)
    wrong = {k: v for k, v in found.items() if Path(v).resolve() != target.bundle.resolve()}
    if wrong:
        raise CheckFailed(f"bundle_root resolves to {wrong}, not {target.bundle}")
    return f"{' and '.join(found)}.json find {target.bundle} from {work}"


def check_properties(target: Target, scratch: Path, overrides: Mapping[str, Any]) -> str:
    """``ConfigWorkflow.check_properties()`` for ``train`` (train.json) and ``infer`` (inference.json) is empty.

    ``output_dir`` and the training ``ckpt_dir`` go to ``scratch``; ``bundle_root`` is left to the configs.
    ``overrides`` (e.g. ``dataset_dir`` of data at hand) apply to the train workflow, and to the infer workflow of a
    bundle folder; a pack's infer workflow initializes as installed, with nothing but what the pack carries (its
    weights and what lies next to them, such as the HECKTOR preprocessing recipe)."""
    done = []
    # infer first: a pack's inference must initialize before anything (the train workflow) writes data into it
    for workflow_type, stem in (("infer", "inference"), ("train", "train")):
        config = _find_config(target.bundle, stem)
        if config is None:
            if stem == "inference":
                raise CheckFailed("no configs/inference.json")
            continue
        extra = {"output_dir": str(scratch / f"{stem}_out")}
        if workflow_type == "train" or not target.packed:
            extra.update(overrides)
        if workflow_type == "train":
            extra["ckpt_dir"] = str(scratch / "train_models")  # never into the weights an infer check reads
        try:
            workflow = _workflow(target, workflow_type, config, extra)
            missing = workflow.check_properties()
        except Exception as e:
            raise CheckFailed(f"{workflow_type} workflow ({config.name}) does not initialize: {_why(e)}") from e
        if missing:
            raise CheckFailed(
                f"{workflow_type} ({config.name}): required properties missing or optional ones under other ids: "
                f"{missing}"
            )
        done.append(f"{workflow_type} ({config.name})")
    return ", ".join(done)


def check_net_in_out(target: Target) -> str:
    """MONAI's ``verify_net_in_out`` of ``network_def`` in ``inference.json`` (the zoo's call)."""
    from monai.bundle import verify_net_in_out

    try:
        verify_net_in_out(
            net_id="network_def",
            meta_file=str(target.bundle / "configs" / "metadata.json"),
            config_file=str(_find_config(target.bundle, "inference")),
            bundle_root=str(target.bundle),
        )
    except Exception as e:
        raise CheckFailed(str(e)) from e
    return "network_def matches network_data_format"


def check_torchscript(target: Target, scratch: Path) -> str:
    """``ckpt_export`` with ``models/model.pt``, then the TorchScript module must give the eager network's output."""
    import torch
    from monai.bundle import ConfigParser, ckpt_export

    from monai_lexu.utils import load_checkpoint

    ckpt = target.bundle / "models" / "model.pt"
    if not ckpt.is_file():
        return "skip: no models/model.pt here"
    config = _find_config(target.bundle, "inference")
    meta_file = target.bundle / "configs" / "metadata.json"
    exported = scratch / "verify_model.ts"
    try:
        ckpt_export(
            net_id="network_def",
            filepath=str(exported),
            ckpt_file=str(ckpt),
            meta_file=str(meta_file),
            config_file=str(config),
            bundle_root=str(target.bundle),
        )
        scripted = torch.jit.load(str(exported), map_location="cpu").eval()
    except Exception as e:
        raise CheckFailed(f"ckpt_export/torch.jit.load failed: {e}") from e
    parser = ConfigParser()
    parser.read_config(str(config))
    parser.read_meta(str(meta_file))
    parser["bundle_root"] = str(target.bundle)
    eager = parser.get_parsed_content("network_def")
    eager.load_state_dict(load_checkpoint(ckpt))
    eager.eval()
    spec = next(iter(parser["_meta_#network_data_format#inputs"].values()))
    x = torch.rand(1, int(spec["num_channels"]), *_fake_spatial_shape(spec["spatial_shape"]))
    with torch.no_grad():
        got, want = scripted(x), eager(x)
    if got.shape != want.shape or not torch.allclose(got, want, atol=1e-5, rtol=1e-4):
        raise CheckFailed(f"TorchScript output {tuple(got.shape)} differs from the eager network's {tuple(want.shape)}")
    shipped = target.bundle / "models" / "model.ts"
    if shipped.is_file():
        try:
            torch.jit.load(str(shipped), map_location="cpu")
        except Exception as e:
            raise CheckFailed(f"the shipped models/model.ts does not load: {e}") from e
    return f"exported and reloaded; output {tuple(got.shape)} equals the eager network's"


# --------------------------------------------------------------------------------------------------- runner
def _run_check(name: str, fn: Callable[[], str]) -> CheckResult:
    start = time.perf_counter()
    try:
        detail = fn() or ""
        status = "skip" if detail.startswith("skip:") else "pass"
        if status == "skip":
            detail = detail[len("skip:") :].strip()
    except CheckFailed as e:
        status, detail = "fail", str(e)
    except Exception as e:  # a check that crashes is a failed check, reported with its type
        status, detail = "fail", f"{type(e).__name__}: {e}"
    return CheckResult(name, status, detail, time.perf_counter() - start)


@contextlib.contextmanager
def _quiet():
    """No INFO logging (MONAI's input summaries, the bundles' progress lines) and no warning that a config is run
    from a trusted source while the checks run; warnings and errors still show."""
    previous = logging.root.manager.disable
    logging.disable(logging.INFO)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="parsing config_file")
            warnings.filterwarnings("ignore", message=".*nvImageCodec")
            yield
    finally:
        logging.disable(previous)


def _open_target(source: Path, tmp: Path) -> Target:
    """A bundle folder as it is, or a pack unpacked to ``tmp/<name>/`` (the zoo layout)."""
    source = Path(source)
    if source.is_dir():
        return Target(source, source.resolve(), packed=False)
    if not zipfile.is_zipfile(source):
        raise FileNotFoundError(f"{source} is neither a bundle folder nor a bundle zip")
    with zipfile.ZipFile(source) as zf:
        tops = {n.split("/", 1)[0] for n in zf.namelist()}
        if len(tops) != 1:
            raise ValueError(f"{source} must hold exactly one top folder, found {sorted(tops)}")
        for member in zf.namelist():
            if Path(member).is_absolute() or ".." in Path(member).parts:
                raise ValueError(f"{source}: unsafe member {member!r}")
        zf.extractall(tmp)
    return Target(source, (tmp / tops.pop()).resolve(), packed=True)


def check_target(
    source: str | os.PathLike,
    resolver: PinResolver | None = None,
    overrides: Mapping[str, Any] | None = None,
    skip: Sequence[str] = (),
) -> Target:
    """Run every check (:data:`CHECKS` less ``skip``) on a pack or a bundle folder.

    Args:
        source: a bundle zip (``monai_lexu.share pack``) or a bundle folder.
        resolver: resolves the requirement pins (default: one with no cache).
        overrides: config ids set for the property checks, e.g. ``{"dataset_dir": ...}`` of data at hand (the
            train workflow otherwise builds the bundle's default synthetic data under its ``bundle_root``).
        skip: check names not to run.

    Returns:
        The :class:`Target` with one :class:`CheckResult` per check.
    """
    unknown = set(skip) - set(CHECKS)
    if unknown:
        raise ValueError(f"unknown checks {sorted(unknown)}; choose from {CHECKS}")
    resolver = resolver or PinResolver()
    with tempfile.TemporaryDirectory(prefix="zoo_check_") as tmp:
        tmp = Path(tmp)
        target = _open_target(Path(source), tmp / "unpacked")
        scratch = tmp / "scratch"
        scratch.mkdir()
        runs: dict[str, Callable[[], str]] = {
            "files": lambda: check_files(target),
            "version": lambda: check_version(target),
            "metadata": lambda: check_metadata(target),
            "requirements": lambda: check_requirements(target, resolver),
            "format": lambda: check_format(target),
            "large-files": lambda: check_large_files(target),
            "bundle-root": lambda: check_bundle_root(target, scratch),
            "properties": lambda: check_properties(target, scratch, overrides or {}),
            "net-in-out": lambda: check_net_in_out(target),
            "torchscript": lambda: check_torchscript(target, scratch),
        }
        sys.path.insert(0, str(target.bundle))  # as verify_bundle.py: custom bundle code (scripts/) importable
        try:
            with _quiet():
                for name in CHECKS:
                    if name in skip:
                        target.results.append(CheckResult(name, "skip", "--skip"))
                    else:
                        target.results.append(_run_check(name, runs[name]))
        finally:
            sys.path.remove(str(target.bundle))
    return target


# --------------------------------------------------------------------------------------------------- build
def _weights_fit(bundle: Path, ckpt: Path, configs: Sequence[str]) -> bool:
    from monai_lexu.share import check_weights

    try:
        check_weights(bundle, ckpt, configs=configs)
        return True
    except (FileNotFoundError, ValueError):
        return False


def _shared_dataset_dir(bundle: Path, configs: Sequence[Path], work: Path) -> Path:
    """``<work>/<dataset_dir relative to bundle_root>``: bundles whose data sit at the same place below their root
    (the siblings of one data set) share one data folder; otherwise ``<work>/data/<name>``."""
    from monai.bundle import ConfigParser

    marker = "/__zoo_check_bundle_root__"
    parser = ConfigParser()
    parser.read_config([str(c) for c in configs])
    parser["bundle_root"] = marker
    try:
        dataset_dir = str(parser.get_parsed_content("dataset_dir"))
    except Exception:
        dataset_dir = ""
    if dataset_dir.startswith(marker + "/"):
        return work / dataset_dir[len(marker) + 1 :]
    return work / "data" / bundle.name


def _train_tiny(bundle: Path, configs: Sequence[Path], dataset_dir: Path, out: Path, log: Path) -> Path:
    """One iteration of the CPU recipe (``train.json`` + ``cpu_small.json``): one epoch of one iteration, no validation
    (``val_interval`` 2), nothing cached (``cache_rate`` 0); the train handlers' final checkpoint is ``model.pt``."""
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config([str(c) for c in configs])
    files = "[" + ",".join(repr(str(c)) for c in configs) + "]"
    cmd = [sys.executable, "-m", "monai.bundle", "run", "--config_file", files, "--epochs", "1", "--val_interval", "2"]
    cmd += ["--dataset_dir", str(dataset_dir), "--ckpt_dir", str(out / "models"), "--output_dir", str(out / "eval")]
    if "train#trainer" in parser:
        cmd += ["--train#trainer#epoch_length", "1"]
    if "cache_rate" in parser:
        cmd += ["--cache_rate", "0.0"]
    if "make_synthetic" in parser:  # the work folder is not the bundle's default data folder
        cmd += ["--make_synthetic", "true"]
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as f:
        proc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    ckpt = out / "models" / "model.pt"
    if proc.returncode != 0 or not ckpt.is_file():
        tail = "".join(log.read_text(errors="replace").splitlines(keepends=True)[-20:])
        raise RuntimeError(f"training {bundle.name} failed (exit {proc.returncode}); log {log}:\n{tail}")
    return ckpt


def _override_ids(bundle: Path, configs: Sequence[str]) -> dict[str, Any]:
    """The config ids the override files ``configs`` (relative to ``bundle``) set, ``_meta_`` left out."""
    ids: dict[str, Any] = {}
    for name in configs:
        ids.update({k: v for k, v in _load_json(bundle / name).items() if k != "_meta_"})
    return ids


def build_and_check(
    bundles: Sequence[str | os.PathLike],
    work: str | os.PathLike = "build/zoo-check",
    resolver: PinResolver | None = None,
    skip: Sequence[str] = (),
    say: Callable[[str], None] = print,
) -> list[Target]:
    """Weights, pack and checks for each bundle folder (see the module docstring); returns the checked targets:
    per bundle the pack, then the bundle folder."""
    from monai_lexu.share import pack_bundle

    work = Path(work).resolve()
    resolver = resolver or PinResolver()
    if "requirements" not in skip:
        metas = [_load_json(Path(b) / "configs" / "metadata.json") for b in bundles]
        resolver.prime([bundle_requirements(m) for m in metas])
    targets = []
    for source in bundles:
        bundle = Path(source).resolve()
        start = time.perf_counter()
        cpu = bundle / "configs" / "cpu_small.json"
        recipe = [bundle / "configs" / "train.json"] + ([cpu] if cpu.is_file() else [])
        dataset_dir = _shared_dataset_dir(bundle, recipe, work)
        out = work / bundle.name
        override = ["configs/cpu_small.json"] if cpu.is_file() else []
        candidates = [(bundle / "models" / "model.pt", override), (bundle / "models" / "model.pt", [])]
        candidates.append((out / "models" / "model.pt", override))
        found = next(((c, o) for c, o in candidates if c.is_file() and _weights_fit(bundle, c, o)), None)
        if found is None:
            say(f"{bundle.name}: training one iteration of the CPU recipe (log {out / 'train.log'})")
            found = (_train_tiny(bundle, recipe, dataset_dir, out, out / "train.log"), override)
            how = "trained now"
        else:
            how = f"reused {found[0]}"
        result = pack_bundle(bundle, work / "dist", ckpt=found[0], configs=found[1])
        say(f"{bundle.name}: weights {how}; packed {result.path.name} ({result.size // 1024} KB)")
        overrides = {"dataset_dir": str(dataset_dir)}
        # the folder as the zoo's CI sees it once its large files are in place: the weights (and what lies next to
        # them) in ckpt_dir, with the override config they were trained with (a pack has it baked in)
        # (the data at hand and the weights' folder win over what the override config says of them)
        folder_overrides = {**_override_ids(bundle, found[1]), **overrides, "ckpt_dir": str(found[0].parent)}
        for src, extra in ((result.path, overrides), (bundle, folder_overrides)):
            target = check_target(src, resolver, extra, skip)
            targets.append(target)
            say(_format_target(target))
        say(f"{bundle.name}: {time.perf_counter() - start:.0f} s")
    return targets


# --------------------------------------------------------------------------------------------------- CLI
def _format_target(target: Target) -> str:
    kind = "pack" if target.packed else "folder"
    lines = [f"== {target.name} ({kind} {target.source}): {'OK' if target.ok else 'FAILED'}"]
    for r in target.results:
        detail = r.detail if len(r.detail) < 600 else r.detail[:600] + " ..."
        lines.append(f"  {r.status.upper():4}  {r.name:<12} {r.seconds:6.1f} s  {detail}")
    return "\n".join(lines)


def _default_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "monai_lexu" / "zoo_check"


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m monai_lexu.zoo_check {check,build} ...``; exit code 0 when every check passes, else 1."""
    codes = "exit code: 0 every check passed, 1 some check failed (or a target could not be read), 2 usage error."
    parser = argparse.ArgumentParser(
        prog="python -m monai_lexu.zoo_check",
        description="Run the MONAI model zoo's offline bundle checks on packed bundles or bundle folders.",
        epilog=examples_epilog(
            __doc__, "python -m monai_lexu.zoo_check", extra=f"checks: {', '.join(CHECKS)}\n\n{codes}"
        ),
        formatter_class=HelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser(
        "check",
        help="check bundle zips and/or bundle folders",
        description="Run the model zoo's offline checks on bundle zips (python -m monai_lexu.share pack) and/or "
        "bundle folders, and print one line per check and target.",
        epilog=examples_epilog(__doc__, "python -m monai_lexu.zoo_check check", extra=codes),
        formatter_class=HelpFormatter,
    )
    c.add_argument("targets", nargs="+", help="bundle zip (monai_lexu.share pack) or bundle folder")
    c.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config id for property checks")
    b = sub.add_parser(
        "build",
        help="weights (reused or a 1-iteration CPU training), pack, then check, per bundle",
        description="Per bundle folder: reuse its weights or make them with a 1-iteration CPU training (in --work, "
        "never over the bundle's own weights), pack it, then run the checks on the pack.",
        epilog=examples_epilog(__doc__, "python -m monai_lexu.zoo_check build", extra=codes),
        formatter_class=HelpFormatter,
    )
    b.add_argument("bundles", nargs="+", help="bundle folders, e.g. bundles/*")
    b.add_argument("--work", default="build/zoo-check", help="weights, data, packs (default: %(default)s)")
    for p in (c, b):
        p.add_argument("--skip", action="append", default=[], choices=CHECKS, help="do not run this check")
        p.add_argument("--cache-dir", default=str(_default_cache()), help="pin resolution cache (default: %(default)s)")
        p.add_argument("--no-cache", action="store_true", help="resolve the pins again")
    args = parser.parse_args(argv)
    resolver = PinResolver(None if args.no_cache else args.cache_dir)
    start = time.perf_counter()
    try:
        if args.command == "check":
            from monai_lexu.share import parse_set_options

            overrides = parse_set_options(args.set)
            if "requirements" not in args.skip and len(args.targets) > 1:
                with tempfile.TemporaryDirectory() as tmp:
                    metas = [
                        _metadata(_open_target(Path(t), Path(tmp) / str(i)).bundle) for i, t in enumerate(args.targets)
                    ]
                resolver.prime([bundle_requirements(m) for m in metas])
            targets = []
            for source in args.targets:
                targets.append(check_target(source, resolver, overrides, args.skip))
                print(_format_target(targets[-1]))
        else:
            bundles = [b for b in args.bundles if (Path(b) / "configs" / "metadata.json").is_file()]
            targets = build_and_check(bundles, args.work, resolver, args.skip)
    except (FileNotFoundError, ValueError, RuntimeError, CheckFailed) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    failed = [t for t in targets if not t.ok]
    print(
        f"zoo-check: {len(targets) - len(failed)} of {len(targets)} targets pass every check "
        f"({time.perf_counter() - start:.0f} s)"
        + (f"; FAILED: {', '.join(str(t.source) for t in failed)}" if failed else "")
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
