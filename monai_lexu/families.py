"""Bundle families: one base per data set, one small delta per method, full bundles written from the two.

The bundles of one data set (``lexu_riga``, ``layer_ensemble_riga``, ``deep_ensemble_riga``, ...) are a controlled
comparison: they must share data, preprocessing, schedule, evaluation and inference except where the method differs.
In the repository that shared part is written once, in ``bundles/_base/<dataset>/``, and each bundle holds only its
method's difference in ``bundles/<name>/family.json``::

    {
        "base": "riga",
        "configs": {
            "*": {"heads": "encoder_decoder", "num_kept_heads": 4},
            "train.json": {"loss#aux_weight": 1.0},
            "metadata.json": {"name": "...", "changelog#0.1.0": "..."}
        },
        "remove": {"*": ["heads"]}
    }

``configs`` maps a config file name to MONAI config ids and their new values (``#`` or ``::`` go one level down, a
list index is a number, as in ``python -m monai.bundle run --key value``); ``"*"`` applies to every root config
(``train.json`` and ``inference.json``, the files that build a network). ``remove`` lists ids to delete. A new
top-level key is placed before ``network_def`` (method hyper-parameters stay with the other hyper-parameters).
A base value ``"<set by family.json>"`` (e.g. the metadata's ``name`` and ``description``) must be set by every
delta.

Some bundles of a data set share a config the others lack (HECKTOR's 2D axial-slice protocol, ``train_slices.json``
and ``evaluate_slices.json``, which LEXU, Layer Ensembles and Deep Ensembles have and the calibrated ensemble has
not). Such files live in ``bundles/_base/<dataset>/optional/configs/`` and a bundle takes them by listing them::

    {"base": "hecktor", "optional": ["train_slices.json", "evaluate_slices.json"],
     "configs": {"train_slices.json": {"beta": 2.5, "rater_sampling": "batch"}}}

An optional config gets only its own section of ``configs`` and ``remove`` (not ``"*"``: the 3D ``"*"`` overrides,
e.g. a 3D ``network_def``, do not fit a 2D protocol), and ``"bundle_name"`` when it has that key.
The root configs also get ``"bundle_name": "<folder name>"``: the bundle name is written nowhere else; the base
configs use ``@bundle_name`` (``bundle_root``, log lines, report titles).

:func:`write_family_bundle` writes every file of the base (``configs/*.json`` with the delta applied, pretty-printed
with 4 spaces and a final newline as the model-zoo pre-commit hook wants; other files such as ``logging.conf``,
``LICENSE`` and ``docs/data_license.txt`` copied) into ``bundles/<name>/``. Files of the bundle that the base does
not have (``docs/README.md``, ``configs/quick.json``, ...) are the bundle's own and left alone. The written
bundles are committed, so every ``bundles/<name>`` is a complete MONAI bundle that runs from any directory and packs
as it is; ``check`` (run by the test suite) fails when a written file differs from what base + delta give, so the
siblings cannot drift apart.

Command line::

    python -m monai_lexu.families write [--bundles bundles] [NAME ...]   # after editing a base or a delta
    python -m monai_lexu.families check [--bundles bundles]              # exit 1 and list stale files

The exit code is 0 when the bundles were written or are up to date, 1 when ``check`` found stale files, 2 on a usage
error or an invalid base or delta (one line ``error: ...``).
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from monai_lexu.cli_help import HelpFormatter, examples_epilog

__all__ = [
    "BASE_DIR",
    "DELTA_FILE",
    "OPTIONAL_DIR",
    "PLACEHOLDER",
    "ROOT_CONFIGS",
    "find_family_bundles",
    "apply_delta",
    "render_family_bundle",
    "write_family_bundle",
    "check_family_bundles",
    "delta_line_count",
    "main",
]

BASE_DIR = "_base"
OPTIONAL_DIR = "optional"
DELTA_FILE = "family.json"
ROOT_CONFIGS = ("train.json", "inference.json")
_NEW_KEYS_BEFORE = "network_def"
PLACEHOLDER = "<set by family.json>"


def _json_text(config: Any) -> str:
    return json.dumps(config, indent=4) + "\n"


def _split_id(config_id: str) -> list[str]:
    return config_id.replace("::", "#").split("#")


def _insert_top_level(config: dict, key: str, value: Any) -> dict:
    """``config`` with a new ``key`` placed before ``network_def`` (at the end when there is none)."""
    if _NEW_KEYS_BEFORE not in config:
        config[key] = value
        return config
    out: dict = {}
    for k, v in config.items():
        if k == _NEW_KEYS_BEFORE:
            out[key] = value
        out[k] = v
    return out


def _parent(config: Any, parts: Sequence[str], config_id: str, where: str) -> Any:
    node = config
    for part in parts:
        try:
            node = node[int(part)] if isinstance(node, list) else node[part]
        except (KeyError, IndexError, ValueError, TypeError) as e:
            raise KeyError(f"{where}: id '{config_id}' does not exist in the base (no '{part}')") from e
    return node


def apply_delta(
    config: Mapping[str, Any],
    overrides: Mapping[str, Any] | None = None,
    remove: Sequence[str] = (),
    where: str = "delta",
) -> dict:
    """Apply one file's overrides and removals to a copy of a base config.

    Args:
        config: the base config (not modified).
        overrides: ``{id: value}``; the parent of every id must exist in the base; the last part may be new.
        remove: ids to delete (each must exist).
        where: file named in error messages.

    Returns:
        The new config.

    Raises:
        KeyError: an id whose parent (or, for ``remove``, the id itself) is not in the base.
    """
    out = copy.deepcopy(dict(config))
    for config_id, value in (overrides or {}).items():
        *parents, last = _split_id(config_id)
        if not parents and last not in out:
            out = _insert_top_level(out, last, copy.deepcopy(value))
            continue
        node = _parent(out, parents, config_id, where)
        if isinstance(node, list):
            try:
                node[int(last)] = copy.deepcopy(value)
            except (ValueError, IndexError) as e:
                raise KeyError(f"{where}: id '{config_id}' is not an index of the list in the base") from e
        else:
            node[last] = copy.deepcopy(value)
    for config_id in remove:
        *parents, last = _split_id(config_id)
        node = _parent(out, parents, config_id, where)
        if isinstance(node, list) or last not in node:
            raise KeyError(f"{where}: cannot remove '{config_id}': not a key of the base")
        del node[last]
    return out


def find_family_bundles(bundles_dir: str | Path = "bundles") -> list[Path]:
    """Every bundle folder under ``bundles_dir`` that holds a ``family.json``, sorted by name."""
    root = Path(bundles_dir)
    return sorted(p.parent for p in root.glob(f"*/{DELTA_FILE}") if p.parent.name != BASE_DIR)


def _load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: cannot read JSON: {e}") from e


def render_family_bundle(bundle: str | Path) -> dict[str, bytes]:
    """What base + delta give for one bundle: ``{relative path: file content}`` of every file the base owns.

    Args:
        bundle: the bundle folder (``bundles/<name>``) holding ``family.json``.

    Raises:
        ValueError: unreadable or malformed delta/base, or a delta naming a config the base does not have.
        KeyError: a delta id that does not exist in the base.
    """
    bundle = Path(bundle)
    delta_path = bundle / DELTA_FILE
    delta = _load_json(delta_path)
    unknown = set(delta) - {"base", "configs", "remove", "optional"} if isinstance(delta, dict) else set()
    if not isinstance(delta, dict) or "base" not in delta or unknown:
        raise ValueError(
            f"{delta_path}: needs 'base' and may have 'configs', 'remove' and 'optional' (unknown: {sorted(unknown)})"
        )
    base_dir = bundle.parent / BASE_DIR / str(delta["base"])
    if not (base_dir / "configs").is_dir():
        raise ValueError(f"{delta_path}: base '{delta['base']}' not found ({base_dir}/configs is missing)")
    overrides, removals = delta.get("configs", {}), delta.get("remove", {})
    optional = list(delta.get("optional", []))
    optional_dir = base_dir / OPTIONAL_DIR
    for name in optional:
        if not (optional_dir / "configs" / name).is_file():
            raise ValueError(f"{delta_path}: optional '{name}' is not in {optional_dir / 'configs'}")
    base_configs = {p.name for p in (base_dir / "configs").glob("*.json")} | set(optional)
    for name in set(overrides) | set(removals):
        if name != "*" and name not in base_configs:
            raise ValueError(f"{delta_path}: '{name}' is not a config of base '{delta['base']}' nor an optional one")
    sources = [
        (path, path.relative_to(base_dir).as_posix())
        for path in sorted(base_dir.rglob("*"))
        if path.is_file() and not path.is_relative_to(optional_dir)
    ] + [(optional_dir / "configs" / name, f"configs/{name}") for name in optional]
    files: dict[str, bytes] = {}
    for path, rel in sources:
        if path.suffix != ".json" or path.parent.name != "configs":
            files[rel] = path.read_bytes()
            continue
        where = f"{delta_path} [{path.name}]"
        config = _load_json(path)
        if path.name in ROOT_CONFIGS and path.name not in optional:
            config = apply_delta(config, overrides.get("*"), removals.get("*", ()), where)
            config["bundle_name"] = bundle.name
        elif "bundle_name" in config:
            config["bundle_name"] = bundle.name
        config = apply_delta(config, overrides.get(path.name), removals.get(path.name, ()), where)
        text = _json_text(config)
        if json.dumps(PLACEHOLDER) in text:
            raise ValueError(
                f"{where}: the base leaves a value to the method ({PLACEHOLDER!r}) that the delta does not set"
            )
        files[rel] = text.encode()
    return files


def write_family_bundle(bundle: str | Path) -> list[Path]:
    """Write the files :func:`render_family_bundle` gives into the bundle folder; returns the files that changed."""
    bundle = Path(bundle)
    changed = []
    for rel, content in render_family_bundle(bundle).items():
        target = bundle / rel
        if target.is_file() and target.read_bytes() == content:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_bytes(content)
        tmp.replace(target)
        changed.append(target)
    return changed


def check_family_bundles(bundles_dir: str | Path = "bundles") -> list[str]:
    """Compare every family bundle with its base + delta; returns one line per stale or missing file (empty: ok)."""
    problems = []
    for bundle in find_family_bundles(bundles_dir):
        for rel, content in render_family_bundle(bundle).items():
            target = bundle / rel
            if not target.is_file():
                problems.append(f"{target}: missing")
            elif target.read_bytes() != content:
                problems.append(f"{target}: differs from {BASE_DIR}/ + {DELTA_FILE}")
    return problems


def delta_line_count(bundle: str | Path) -> int:
    """Lines of JSON a method costs on an existing data set: the lines of its ``family.json``."""
    return len(Path(bundle, DELTA_FILE).read_text().splitlines())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m monai_lexu.families",
        description="Write or check the bundles built from bundles/_base/<dataset>/ and each bundle's family.json.",
        epilog=examples_epilog(
            __doc__,
            "python -m monai_lexu.families",
            extra="exit code: 0 written or up to date, 1 check found stale files, 2 usage error or an invalid "
            "base/delta (one line 'error: ...').",
        ),
        formatter_class=HelpFormatter,
    )
    parser.add_argument("command", choices=("write", "check"), help="write: regenerate; check: exit 1 if stale")
    parser.add_argument("names", nargs="*", help="bundle names (default: every bundle with a family.json)")
    parser.add_argument("--bundles", default="bundles", help="the bundles folder (default: %(default)s)")
    args = parser.parse_args(argv)
    bundles = find_family_bundles(args.bundles)
    if args.names:
        unknown = set(args.names) - {b.name for b in bundles}
        if unknown:
            parser.error(f"no {DELTA_FILE} in {args.bundles}/ for: {', '.join(sorted(unknown))}")
        bundles = [b for b in bundles if b.name in args.names]
    try:
        if args.command == "check":
            problems = check_family_bundles(args.bundles)
            for line in problems:
                print(line)
            if problems:
                print("run `python -m monai_lexu.families write` (make bundles) and commit the result", file=sys.stderr)
                return 1
            print(f"{len(bundles)} family bundles match their base and delta")
            return 0
        for bundle in bundles:
            changed = write_family_bundle(bundle)
            print(f"{bundle.name}: {len(changed)} file(s) written" + "".join(f"\n  {p}" for p in changed))
    except (ValueError, KeyError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
