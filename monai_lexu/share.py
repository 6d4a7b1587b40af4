"""Share a trained bundle as a versioned zip; verify and install such a zip safely.

The archive follows the MONAI Bundle Specification: ``<name>_v<version>.zip`` holds one top folder ``<name>/`` with
``configs/`` (``metadata.json``, ``inference.json``, ...), ``docs/``, ``models/model.pt`` (and ``models/model.ts`` on
request) and ``LICENSE``. MONAI's ``download(name=..., url=...)`` saves the file as ``<bundle_dir>/<name>.zip`` and
extracts it into ``<bundle_dir>``, so the top folder must be the bundle name given to ``--name``.

Command line::

    python -m monai_lexu.share pack bundles/lexu_riga --out dist [--version 0.2.0] [--ckpt models/model.pt] \\
        [--include-ts] [--config configs/cpu_small.json] [--set features=[8,16,32,64]] [--no-bake] \\
        [--weights-url URL]
    python -m monai_lexu.share info dist/lexu_riga_v0.1.0.zip
    python -m monai_lexu.share verify dist/lexu_riga_v0.1.0.zip [--sha256 HEX | --md5-file FILE]
    python -m monai_lexu.share install lexu_riga_v0.1.0.zip --sha256 HEX --bundle_dir ~/bundles [--replace] \\
        [--allow-url]

A bundle's configs are code: MONAI evaluates every ``$`` expression with Python's ``eval`` and instantiates every
``_target_``, so running a bundle runs whatever its author (or whoever altered the zip) wrote. Run only bundles whose
zip matches a checksum from the publisher. ``pack`` writes ``<zip>.sha256`` and ``<zip>.md5`` (``sha256sum``/``md5sum``
format) next to the zip; publish the sha256 through another channel than the zip. ``install`` checks the zip's sha256
*before* anything is unpacked or parsed, then refuses a member that would land outside the bundle folder (a ``..``
component, an absolute path), a symbolic link, or a zip that is not one top folder ``<name>/`` with
``configs/metadata.json``, before writing any file; it unpacks into a temporary folder next to the target and moves it
into place, so a failed install leaves nothing. ``verify`` runs the same checks without installing, and ``info`` exits
non-zero on a checksum mismatch or an unsafe member. ``python -m monai.bundle download --url`` takes no checksum and
unpacks first; use it only for zips verified beforehand.

Before writing anything ``pack`` checks the bundle: ``configs/metadata.json`` is valid against MONAI's official
metadata schema, shipped unchanged as ``monai_lexu/schemas/meta_schema_20240725.json`` (the file the model zoo's CI
and ``python -m monai.bundle verify_metadata`` use), plus the stricter rules of :func:`metadata_problems`, and its
``version`` has a ``changelog`` entry (the model-zoo rule); ``LICENSE`` exists, and the weights load (strictly) into
the network built from ``configs/inference.json``'s ``network_def`` with ``bundle_root`` set to the bundle. Weights
trained with an override config (e.g. the CPU configuration) need the same override for this check:
``--config configs/cpu_small.json`` and/or ``--set KEY=VALUE``.

Only ``configs/``, ``docs/``, ``scripts/`` (custom bundle code, when present), ``LICENSE``, the chosen weights and a
``large_files.yml`` are packed; ``data/``, ``eval/``, ``runs/``, ``__pycache__``, hidden files and other caches never
are. The zip is deterministic (sorted entries, fixed timestamps and permissions, fixed compression level), so packing
the same bundle twice gives the same md5.

A pack is self-consistent, as the model zoo's CI wants it (``verify_net_in_out`` and ``ckpt_export`` read only
``configs/inference.json`` and ``models/model.pt``):

- the override configs and ``--set`` values that the weights need are *baked in*: every packed config that defines one
  of their ids gets the override's value (ids a config does not define are not added), so ``configs/inference.json``
  of the pack builds the network the weights fit, and ``train.json`` is the recipe that made them. The weights are
  checked again against the baked ``inference.json`` alone. An override file's ``_meta_`` block (``{metadata id:
  value}``, inert at run time) is written into ``metadata.json``, so the metadata describes the packed network
  (e.g. the CPU recipe's head count). ``--no-bake`` packs the configs unchanged.
- ``large_files.yml`` names the packed weights: ``path: models/model.pt`` with their md5 as ``hash_val``, and the
  ``url`` of the bundle's own ``large_files.yml`` (or ``--weights-url``). The project hosts no weights, so the url is
  usually the placeholder :data:`WEIGHTS_URL_PLACEHOLDER`; ``python -m monai.bundle download_large_files`` skips a
  file that exists with the right hash, so a pack passes it offline.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import io
import json
import os
import re
import stat
import sys
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from monai_lexu.cli_help import HelpFormatter, examples_epilog
from monai_lexu.utils import load_checkpoint, state_dict_mismatch

__all__ = [
    "SCHEMA_FILE",
    "SCHEMA_MD5",
    "WEIGHTS_URL_PLACEHOLDER",
    "PackResult",
    "md5sum",
    "metadata_problems",
    "validate_metadata",
    "check_weights",
    "check_bundle",
    "bundle_files",
    "bake_configs",
    "large_files_yml",
    "write_deterministic_zip",
    "pack_bundle",
    "bundle_info",
    "sha256sum",
    "read_checksum_file",
    "unsafe_members",
    "BundleVerificationError",
    "verify_bundle_zip",
    "install_bundle",
    "parse_set_options",
    "main",
]

# MONAI's official bundle metadata schema, byte for byte as published (Project-MONAI/project-monai.github.io,
# public/schema/, a copy of the MONAI-extra-test-data 0.8.1 release asset; Apache-2.0). Never edit it: stricter
# project rules live in metadata_problems(). SCHEMA_MD5 guards the file against edits.
SCHEMA_FILE = Path(__file__).resolve().parent / "schemas" / "meta_schema_20240725.json"
SCHEMA_MD5 = "76e1add273836515d0bbb3bc71962474"

# fixed zip entry metadata: the earliest date a zip can store, regular file rw-r--r-- created on unix
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)
_ZIP_MODE = 0o100644
_ZIP_LEVEL = 6
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_PACKED_DIRS = ("configs", "docs", "scripts")
_PACKED_FILES = ("LICENSE",)
# files a training run writes next to the weights that inference needs with them (the HECKTOR recipe)
_MODEL_SIDECARS = ("preprocessing.json", "calibration.json")
_LARGE_FILES = ("large_files.yml", "large_files.yaml", "large_files.json")
# The project hosts no weights: a ``.invalid`` host (RFC 2606) never resolves, so a download attempt fails at once.
WEIGHTS_URL_PLACEHOLDER = "https://weights-not-hosted.invalid/monai-lexu/models/model.pt"
_LARGE_FILES_HEADER = """\
# Where the large files of this bundle come from. `python -m monai.bundle download_large_files` (run first by the
# model zoo's CI) downloads each listed file that is missing; a file at hand must match hash_val when one is given.
# The project hosts no weights: unless a release asset is named below, the url is a placeholder that never resolves.
# models/model.pt is made by training the bundle (docs/README.md; the CPU recipe is configs/cpu_small.json). A pack
# (`python -m monai_lexu.share pack <bundle> --config configs/cpu_small.json`) carries it and names its md5 here; to
# publish weights, attach a pack's models/model.pt to a release and pack with `--weights-url <its URL>`.
"""
_SKIP_DIRS = {"__pycache__", ".ipynb_checkpoints", ".pytest_cache", ".mypy_cache", ".ruff_cache"}
_SKIP_SUFFIXES = (".pyc", ".pyo", ".swp", "~")


@dataclass
class PackResult:
    """What :func:`pack_bundle` wrote.

    Attributes:
        path: the zip, ``<out>/<name>_v<version>.zip``.
        md5: hex md5 of the zip (also written to ``<zip>.md5`` in ``md5sum`` format).
        size: zip size in bytes.
        name: bundle name (top folder of the archive).
        version: packed ``metadata.json`` version.
        entries: archive member names, sorted.
        sha256: hex sha256 of the zip (also written to ``<zip>.sha256`` in ``sha256sum`` format), the checksum that
            ``install`` and ``verify`` take.
    """

    path: Path
    md5: str
    size: int
    name: str
    version: str
    entries: list[str] = field(default_factory=list)
    sha256: str = ""


def _file_digest(path: str | os.PathLike, algorithm: str, chunk_size: int = 1 << 20) -> str:
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()


def md5sum(path: str | os.PathLike, chunk_size: int = 1 << 20) -> str:
    """Hex md5 digest of a file (the hash type of the model zoo's ``large_files.yml``)."""
    return _file_digest(path, "md5", chunk_size)


def sha256sum(path: str | os.PathLike, chunk_size: int = 1 << 20) -> str:
    """Hex sha256 digest of a file (the checksum ``install`` and ``verify`` take)."""
    return _file_digest(path, "sha256", chunk_size)


_VERSION_RE = re.compile(r"^[0-9]+\.[0-9]+(\.[0-9]+)?([.+-][0-9A-Za-z.+-]+)?$")
_TENSOR_KEYS = (
    "type",
    "format",
    "num_channels",
    "spatial_shape",
    "dtype",
    "value_range",
    "is_patch_data",
    "channel_def",
)


def metadata_problems(metadata: Mapping[str, Any]) -> list[str]:
    """The project's rules for ``metadata.json`` beyond the official schema, one ``"path: message"`` line each.

    The official schema (:data:`SCHEMA_FILE`) is kept byte for byte; these rules are layered on top in code so there
    is one schema file in force and it stays valid under every jsonschema release MONAI and MONAI Label use (3.2 and
    4.x). They are what the project's former, stricter schema checked:

    - ``version``, ``monai_version``, ``pytorch_version`` and ``numpy_version`` are plain release numbers
      (``1.6.1``), because the model-zoo CI turns them into ``==`` pins;
    - ``required_packages_version`` maps package names to non-empty version strings (also pinned with ``==``);
    - ``network_data_format`` has at least one input and one output, and each is a tensor description with every
      field of the MONAI Bundle Specification (``type``, ``format``, ``num_channels`` >= 0, ``spatial_shape``,
      ``dtype``, ``value_range`` of at most two numbers, ``is_patch_data``, ``channel_def``); the official schema
      also accepts a bare number or string there, and does not require ``is_patch_data``/``channel_def``.

    The version-in-changelog rule is checked by :func:`validate_metadata` separately.
    """
    problems: list[str] = []
    for key in ("version", "monai_version", "pytorch_version", "numpy_version"):
        value = metadata.get(key)
        if isinstance(value, str) and not _VERSION_RE.match(value):
            problems.append(f"{key}: {value!r} is not a release number such as '1.6.1'")
    packages = metadata.get("required_packages_version")
    if isinstance(packages, Mapping):
        for name, version in packages.items():
            if not isinstance(version, str) or not version.strip():
                problems.append(f"required_packages_version/{name}: {version!r} is not a version string")
    network = metadata.get("network_data_format")
    if isinstance(network, Mapping):
        for side in ("inputs", "outputs"):
            specs = network.get(side)
            if not isinstance(specs, Mapping):
                continue
            if not specs:
                problems.append(f"network_data_format/{side}: needs at least one entry")
            for name, spec in specs.items():
                where = f"network_data_format/{side}/{name}"
                if not isinstance(spec, Mapping):
                    problems.append(f"{where}: must be a tensor description (an object), got {spec!r}")
                    continue
                problems += [f"{where}: {k!r} is a required property" for k in _TENSOR_KEYS if k not in spec]
                channels = spec.get("num_channels")
                if isinstance(channels, int) and not isinstance(channels, bool) and channels < 0:
                    problems.append(f"{where}/num_channels: {channels} is less than 0")
                value_range = spec.get("value_range")
                if isinstance(value_range, list) and len(value_range) > 2:
                    problems.append(f"{where}/value_range: {value_range} has more than 2 items")
                if "is_patch_data" in spec and not isinstance(spec["is_patch_data"], bool):
                    problems.append(f"{where}/is_patch_data: {spec['is_patch_data']!r} is not of type 'boolean'")
                if "channel_def" in spec and not isinstance(spec["channel_def"], Mapping):
                    problems.append(f"{where}/channel_def: {spec['channel_def']!r} is not of type 'object'")
    return problems


def _schema_validator(schema_obj: Mapping[str, Any]):
    """A jsonschema validator for ``schema_obj`` under jsonschema 3.2 and 4.x.

    The official schema declares draft 2019-09 (``$defs``); jsonschema 4 has a validator for it, jsonschema 3.2 (as in
    MONAI Label environments) does not and falls back to draft 7, which gives the same verdict for this schema: its
    ``$ref`` values are plain JSON pointers (``#/$defs/...``) and it uses no keyword draft 7 lacks.
    """
    import warnings

    import jsonschema

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # 3.2: "metaschema ... not found, using the latest draft"
        cls = jsonschema.validators.validator_for(schema_obj, default=jsonschema.Draft7Validator)
    return cls(schema_obj)


def _schema_problems(metadata: Mapping[str, Any], schema_obj: Mapping[str, Any]) -> list[str]:
    """Every violation of ``schema_obj``, as ``"path: message"``; an ``anyOf`` failure reports its best branch."""
    from jsonschema.exceptions import best_match

    validator = _schema_validator(schema_obj)
    lines = []
    for error in sorted(validator.iter_errors(dict(metadata)), key=lambda e: list(map(str, e.absolute_path))):
        deepest = best_match([error]) if error.context else error
        lines.append(f"{'/'.join(map(str, deepest.absolute_path)) or '<root>'}: {deepest.message}")
    return lines


def validate_metadata(metadata: Mapping[str, Any] | str | os.PathLike, schema: str | os.PathLike | None = None) -> dict:
    """Validate a bundle ``metadata.json`` against the official schema, the project's rules and the zoo version rule.

    Args:
        metadata: the parsed metadata or the path of ``metadata.json``.
        schema: JSON schema file; defaults to :data:`SCHEMA_FILE` (MONAI's ``meta_schema_20240725.json``).

    Returns:
        The metadata as a dict.

    Raises:
        FileNotFoundError: the metadata or schema file does not exist.
        ValueError: the file is not JSON, violates the schema or :func:`metadata_problems` (every violation is listed
            with its JSON path), or its ``version`` has no ``changelog`` entry.
    """
    source = "metadata"
    if not isinstance(metadata, Mapping):
        source = str(metadata)
        if not Path(metadata).is_file():
            raise FileNotFoundError(f"bundle metadata not found: {source}")
        try:
            metadata = json.loads(Path(metadata).read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise ValueError(f"{source} is not valid JSON: {e}") from e
    if not isinstance(metadata, Mapping):
        raise ValueError(f"{source} must hold a JSON object, got {type(metadata).__name__}")
    schema_path = Path(schema) if schema is not None else SCHEMA_FILE
    if not schema_path.is_file():
        raise FileNotFoundError(f"metadata schema not found: {schema_path}")
    schema_obj = json.loads(schema_path.read_text(encoding="utf-8"))
    lines = list(dict.fromkeys(_schema_problems(metadata, schema_obj) + metadata_problems(metadata)))
    if lines:
        raise ValueError(
            f"{source} does not match the schema {schema_path.name}:\n" + "\n".join(f"  {line}" for line in lines)
        )
    version = metadata["version"]
    if version not in metadata.get("changelog", {}):
        raise ValueError(f"{source}: version {version!r} has no entry in 'changelog' (model-zoo rule)")
    return dict(metadata)


def check_weights(
    bundle_dir: str | os.PathLike,
    ckpt: str | os.PathLike = "models/model.pt",
    configs: Sequence[str | os.PathLike] = (),
    overrides: Mapping[str, Any] | None = None,
    net_id: str = "network_def",
) -> int:
    """Check that the weights load strictly into the network of ``configs/inference.json``.

    The network is built with :class:`monai.bundle.ConfigParser` from ``configs/inference.json`` followed by
    ``configs`` (later files win), with ``bundle_root`` set to ``bundle_dir`` and then ``overrides`` applied.

    Args:
        bundle_dir: the bundle directory.
        ckpt: weights file, relative to ``bundle_dir`` or absolute.
        configs: extra override config files (relative to ``bundle_dir`` or absolute), e.g. ``configs/cpu_small.json``
            for weights trained with the CPU configuration.
        overrides: config ids and values set after reading, e.g. ``{"features": [8, 16, 32, 64]}``.
        net_id: config id of the network definition.

    Returns:
        The number of tensors loaded.

    Raises:
        FileNotFoundError: the weights file, ``configs/inference.json`` or an override config is missing.
        ValueError: the network cannot be built, or the weights do not fit it (missing/unexpected keys or shapes).
    """
    from monai.bundle import ConfigParser

    bundle = Path(bundle_dir).resolve()
    ckpt_path = _resolve(bundle, ckpt)
    if not ckpt_path.is_file():
        raise FileNotFoundError(f"weights file not found: {ckpt_path} (train the bundle first or pass --ckpt)")
    files = [bundle / "configs" / "inference.json", *(_resolve(bundle, c) for c in configs)]
    for f in files:
        if not f.is_file():
            raise FileNotFoundError(f"config file not found: {f}")
    parser = ConfigParser()
    parser.read_config([str(f) for f in files])
    parser["bundle_root"] = str(bundle)
    for key, value in (overrides or {}).items():
        if _split_id(key)[0] != "_meta_":  # metadata ids describe the network, they do not build it
            parser[key] = value
    if net_id not in parser:
        raise ValueError(f"'{net_id}' is not defined in {', '.join(str(f) for f in files)}")
    try:
        net = parser.get_parsed_content(net_id, instantiate=True)
    except Exception as e:
        raise ValueError(f"cannot build '{net_id}' from {', '.join(str(f) for f in files)}: {e}") from e
    state = load_checkpoint(ckpt_path)
    problems = state_dict_mismatch(net.state_dict(), state)
    if problems:
        used = ", ".join(str(f.relative_to(bundle) if f.is_relative_to(bundle) else f) for f in files)
        raise ValueError(
            f"the weights {ckpt_path} do not fit the network '{net_id}' built from {used} with overrides "
            f"{dict(overrides or {})}: {problems}.\nIf the model was trained with an override config, pass the same "
            "override, e.g. --config configs/cpu_small.json --set features=[8,16,32,64]"
        )
    net.load_state_dict(state, strict=True)
    return len(state)


def check_bundle(
    bundle_dir: str | os.PathLike,
    ckpt: str | os.PathLike = "models/model.pt",
    include_ts: bool = False,
    configs: Sequence[str | os.PathLike] = (),
    overrides: Mapping[str, Any] | None = None,
) -> dict:
    """Run every check of :func:`pack_bundle` without writing anything.

    Checks, in order: the bundle directory exists; ``configs/metadata.json`` is valid (:func:`validate_metadata`);
    ``LICENSE`` and ``configs/inference.json`` exist; the weights load into the network (:func:`check_weights`);
    with ``include_ts``, ``models/model.ts`` exists and ``torch.jit.load`` reads it.

    Returns:
        The bundle's metadata.

    Raises:
        FileNotFoundError: a required file is missing (the message names it).
        ValueError: invalid metadata or weights.
    """
    bundle = Path(bundle_dir).resolve()
    if not bundle.is_dir():
        raise FileNotFoundError(f"bundle directory not found: {bundle}")
    metadata = validate_metadata(bundle / "configs" / "metadata.json")
    for required in ("LICENSE", "configs/inference.json"):
        if not (bundle / required).is_file():
            raise FileNotFoundError(f"required bundle file not found: {bundle / required}")
    check_weights(bundle, ckpt, configs=configs, overrides=overrides)
    if include_ts:
        ts = bundle / "models" / "model.ts"
        if not ts.is_file():
            raise FileNotFoundError(
                f"{ts} not found: export it first with `python -m monai.bundle ckpt_export --net_id network_def "
                f"--filepath {ts} --ckpt_file {_resolve(bundle, ckpt)} --config_file <inference configs> "
                f"--bundle_root {bundle}`"
            )
        import torch

        try:
            torch.jit.load(str(ts), map_location="cpu")
        except Exception as e:
            raise ValueError(f"cannot load the TorchScript model {ts}: {e}") from e
    return metadata


def _skipped(rel: Path) -> bool:
    return any(p in _SKIP_DIRS or p.startswith(".") for p in rel.parts) or rel.name.endswith(_SKIP_SUFFIXES)


def bundle_files(
    bundle_dir: str | os.PathLike, ckpt: str | os.PathLike = "models/model.pt", include_ts: bool = False
) -> dict[str, Path]:
    """The files to pack, as ``{archive path below the top folder: source file}``.

    ``configs/``, ``docs/`` and ``scripts/`` are packed recursively without caches, hidden files and editor
    leftovers; ``LICENSE`` when present; ``ckpt`` is packed as ``models/model.pt`` (the file name the bundle configs
    load) with ``preprocessing.json`` when one lies next to it (the recipe HECKTOR training records for inference)
    and, for weights named ``model.pt``, their record ``model.json`` (the configs that made them,
    :func:`monai_lexu.utils.record_weights_origin`);
    ``models/model.ts`` only with ``include_ts``. Nothing else (``data/``, ``eval/``, ``runs/``, other model files)
    is ever packed; :func:`pack_bundle` adds a ``large_files.yml`` (:func:`large_files_yml`).
    """
    bundle = Path(bundle_dir).resolve()
    files: dict[str, Path] = {}
    for top in _PACKED_DIRS:
        root = bundle / top
        if not root.is_dir():
            continue
        for path in root.rglob("*"):
            rel = path.relative_to(bundle)
            if path.is_file() and not _skipped(rel):
                files[rel.as_posix()] = path
    for name in _PACKED_FILES:
        if (bundle / name).is_file():
            files[name] = bundle / name
    files["models/model.pt"] = _resolve(bundle, ckpt)
    for sidecar in _MODEL_SIDECARS:
        if (files["models/model.pt"].parent / sidecar).is_file():
            files[f"models/{sidecar}"] = files["models/model.pt"].parent / sidecar
    record = files["models/model.pt"].with_suffix(".json")  # the configs that made the weights (training writes it)
    if files["models/model.pt"].name == "model.pt" and record.is_file():
        files["models/model.json"] = record
    if include_ts:
        files["models/model.ts"] = bundle / "models" / "model.ts"
    return dict(sorted(files.items()))


def _split_id(config_id: str) -> list[str]:
    return config_id.replace("::", "#").split("#")


def _defines(config: Any, parts: Sequence[str]) -> bool:
    node = config
    for part in parts:
        if isinstance(node, list):
            if not part.lstrip("-").isdigit() or not -len(node) <= int(part) < len(node):
                return False
            node = node[int(part)]
        elif isinstance(node, Mapping) and part in node:
            node = node[part]
        else:
            return False
    return True


def _set_id(config: Any, parts: Sequence[str], value: Any) -> None:
    node = config
    for part in parts[:-1]:
        node = node[int(part)] if isinstance(node, list) else node[part]
    node[int(parts[-1]) if isinstance(node, list) else parts[-1]] = value


def _json_bytes(config: Any) -> bytes:
    """JSON as the model zoo's pre-commit hook writes it: 4-space indent, key order kept, ASCII, final newline."""
    return (json.dumps(config, indent=4) + "\n").encode("utf-8")


def bake_configs(
    bundle_dir: str | os.PathLike,
    configs: Sequence[str | os.PathLike] = (),
    overrides: Mapping[str, Any] | None = None,
) -> dict[str, bytes]:
    """The bundle's JSON configs with the override configs and ``overrides`` written into them.

    Every id of the override files (their top-level keys, in order) and then of ``overrides`` is set in each
    ``configs/*.json`` of the bundle that already defines it (``metadata.json`` and the override files themselves
    excepted); ids a config does not define are not added, so override files such as ``evaluate.json`` stay small.

    Metadata: a recipe that changes the network (e.g. fewer heads on CPU) must also change what ``metadata.json``
    says about it. An override file declares that under the key ``_meta_`` as ``{metadata id: value}`` (e.g.
    ``"network_data_format#outputs#pred#num_channels": 8``); ``overrides`` may give ``_meta_#<id>`` ids. They are set
    in ``metadata.json`` (each id's parent must exist there; a value replaces the old one whole). At run time the
    block is inert: MONAI reads the configs first and then replaces ``_meta_`` with ``metadata.json``.

    Args:
        bundle_dir: the bundle directory.
        configs: override config files (relative to the bundle or absolute), e.g. ``configs/cpu_small.json``.
        overrides: ids and values applied after the files.

    Returns:
        ``{"configs/<file>.json": new content}`` for the configs that changed (``configs/metadata.json`` included).

    Raises:
        ValueError: an override id is defined by no config of the bundle, is a ``+`` merge id, or is a metadata id
            whose parent ``metadata.json`` lacks.
    """
    from monai.bundle import ConfigParser

    bundle = Path(bundle_dir).resolve()
    values: dict[str, Any] = {}
    meta_values: dict[str, Any] = {}
    for config in configs:
        content = dict(ConfigParser.load_config_file(str(_resolve(bundle, config))))
        block = content.pop("_meta_", None)
        if block is not None and not isinstance(block, Mapping):
            raise ValueError(f"{config}: '_meta_' must map metadata ids to values, got {type(block).__name__}")
        meta_values.update(block or {})
        values.update(content)
    for config_id, value in (overrides or {}).items():
        head, *rest = _split_id(config_id)
        if head == "_meta_" and rest:
            meta_values["#".join(rest)] = value
        else:
            values[config_id] = value
    skip = {bundle / "configs" / "metadata.json", *(_resolve(bundle, c).resolve() for c in configs)}
    targets = {
        f"configs/{path.name}": json.loads(path.read_text(encoding="utf-8"))
        for path in sorted((bundle / "configs").glob("*.json"))
        if path.resolve() not in skip
    }
    changed: set[str] = set()
    for config_id, value in values.items():
        if config_id.startswith("+"):
            raise ValueError(f"cannot bake the merge id {config_id!r} into the packed configs; pack with --no-bake")
        parts = _split_id(config_id)
        hits = [rel for rel, config in targets.items() if _defines(config, parts)]
        if not hits:
            raise ValueError(f"override id {config_id!r} is defined by no config of {bundle}; pack with --no-bake")
        for rel in hits:
            _set_id(targets[rel], parts, value)
            changed.add(rel)
    if meta_values:
        targets["configs/metadata.json"] = json.loads((bundle / "configs" / "metadata.json").read_text("utf-8"))
        for config_id, value in meta_values.items():
            parts = _split_id(config_id)
            if not _defines(targets["configs/metadata.json"], parts[:-1]):
                raise ValueError(f"metadata id {config_id!r}: metadata.json has no {'#'.join(parts[:-1])!r}")
            _set_id(targets["configs/metadata.json"], parts, value)
        changed.add("configs/metadata.json")
    return {rel: _json_bytes(targets[rel]) for rel in sorted(changed)}


def _bundle_weight_urls(bundle: Path) -> dict[str, str]:
    """``{path: url}`` of the bundle's own ``large_files.*`` (empty when it has none)."""
    from monai.bundle import ConfigParser

    for name in _LARGE_FILES:
        if (bundle / name).is_file():
            entries = ConfigParser.load_config_file(str(bundle / name)).get("large_files", [])
            return {str(e["path"]): str(e.get("url", "")) for e in entries if isinstance(e, Mapping) and "path" in e}
    return {}


def large_files_yml(entries: Sequence[Mapping[str, str]]) -> bytes:
    """The text of a ``large_files.yml``: a comment saying where the weights come from, then ``entries``
    (``path``, ``url``, ``hash_val``, ``hash_type`` each) in the model zoo's layout."""
    lines = [_LARGE_FILES_HEADER.rstrip("\n"), "large_files:"]
    for entry in entries:
        lines.append(f"  - path: {json.dumps(entry['path'])}")
        for key in ("url", "hash_val", "hash_type"):
            lines.append(f"    {key}: {json.dumps(entry.get(key, ''))}")
    return ("\n".join(lines) + "\n").encode("utf-8")


def _network_fits(bundle: Path, inference: bytes, ckpt: Path, net_id: str = "network_def") -> str:
    """How the weights ``ckpt`` fail to fit ``net_id`` of the (baked) inference config ``inference``; ``""``: fit."""
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config(json.loads(inference))
    parser["bundle_root"] = str(bundle)
    try:
        net = parser.get_parsed_content(net_id, instantiate=True)
    except Exception as e:
        return f"cannot build '{net_id}': {e}"
    return state_dict_mismatch(net.state_dict(), load_checkpoint(ckpt))


def write_deterministic_zip(path: str | os.PathLike, members: Mapping[str, bytes | Path]) -> list[str]:
    """Write a zip whose bytes depend only on the member names and contents.

    Entries are sorted by name, carry the timestamp 1980-01-01 00:00:00 and mode ``rw-r--r--``, and are deflated at
    a fixed level; no directory entries are written (``unzip`` and MONAI's extractor create them). The file is
    written to a temporary name and renamed, so a failed run leaves no partial zip.

    Args:
        path: output zip.
        members: archive name -> content (bytes) or source file.

    Returns:
        The member names in archive order.
    """
    path = Path(path)
    names = sorted(members)
    tmp = path.with_name(path.name + ".part")
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=_ZIP_LEVEL) as zf:
            for name in names:
                info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.create_system = 3
                info.external_attr = _ZIP_MODE << 16
                content = members[name]
                data = content if isinstance(content, bytes) else Path(content).read_bytes()
                zf.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED, compresslevel=_ZIP_LEVEL)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return names


def _bumped_metadata(metadata: dict, version: str, note: str | None) -> bytes:
    """The metadata with ``version`` set and a changelog line for it put first (newest first, as the model zoo)."""
    old = metadata["version"]
    changelog = dict(metadata.get("changelog", {}))
    entry = changelog.pop(version, None) or note or f"packed from version {old} by monai_lexu.share"
    out = dict(metadata)
    out["version"] = version
    out["changelog"] = {version: entry, **changelog}
    return _json_bytes(out)


def pack_bundle(
    bundle_dir: str | os.PathLike,
    out_dir: str | os.PathLike = "dist",
    version: str | None = None,
    ckpt: str | os.PathLike = "models/model.pt",
    include_ts: bool = False,
    name: str | None = None,
    configs: Sequence[str | os.PathLike] = (),
    overrides: Mapping[str, Any] | None = None,
    changelog: str | None = None,
    bake: bool = True,
    weights_url: str | None = None,
) -> PackResult:
    """Check a bundle and pack it as ``<out_dir>/<name>_v<version>.zip`` (plus ``<zip>.sha256`` and ``<zip>.md5``).

    Args:
        bundle_dir: the bundle directory, e.g. ``bundles/lexu_riga``.
        out_dir: output directory (created); must not lie inside a packed folder of the bundle.
        version: packed version; defaults to ``metadata.json``'s ``version``. A different value is written into the
            packed ``metadata.json`` (the bundle's own file is not changed) with a changelog line.
        ckpt: weights file (relative to ``bundle_dir`` or absolute), packed as ``models/model.pt``.
        include_ts: also pack ``models/model.ts`` (must exist and load with ``torch.jit.load``).
        name: bundle name, i.e. the archive's top folder and the ``--name`` to give ``monai.bundle download``;
            defaults to the directory name of ``bundle_dir``.
        configs: override configs the weights need (see :func:`check_weights`); baked into the packed configs.
        overrides: config overrides the weights need; baked into the packed configs.
        changelog: changelog text for a new ``version`` (default: ``"packed from version <old> by
            monai_lexu.share"``).
        bake: write ``configs``/``overrides`` into the packed configs (:func:`bake_configs`) and check the weights
            against the baked ``inference.json`` alone; ``False`` packs the configs as they are.
        weights_url: download URL written for ``models/model.pt`` in the packed ``large_files.yml``; default: the
            bundle's own ``large_files.yml`` entry, else :data:`WEIGHTS_URL_PLACEHOLDER`.

    Returns:
        A :class:`PackResult`.

    Raises:
        FileNotFoundError: missing bundle, metadata, LICENSE, inference config or weights.
        ValueError: invalid metadata, version or name, weights that do not fit the network, or ``out_dir`` inside
            the packed content.
    """
    bundle = Path(bundle_dir).resolve()
    name = name or bundle.name
    if not _NAME_RE.match(name):
        raise ValueError(f"invalid bundle name {name!r}: use letters, digits, '_', '.' or '-'")
    metadata = check_bundle(bundle, ckpt, include_ts=include_ts, configs=configs, overrides=overrides)
    baked = bake_configs(bundle, configs, overrides) if bake else {}
    meta_bytes = baked.pop("configs/metadata.json", None) or (bundle / "configs" / "metadata.json").read_bytes()
    if meta_bytes != (bundle / "configs" / "metadata.json").read_bytes():
        metadata = validate_metadata(json.loads(meta_bytes), SCHEMA_FILE)
    if version is not None and version != metadata["version"]:
        meta_bytes = _bumped_metadata(metadata, version, changelog)
        validate_metadata(json.loads(meta_bytes), SCHEMA_FILE)
    version = version or metadata["version"]

    out = Path(out_dir).resolve()
    for top in (*_PACKED_DIRS, "models"):
        if out.is_relative_to(bundle / top):
            raise ValueError(f"output directory {out} is inside the packed folder {bundle / top}; choose another --out")
    out.mkdir(parents=True, exist_ok=True)

    files = bundle_files(bundle, ckpt, include_ts)
    if baked:
        inference = baked.get("configs/inference.json", (bundle / "configs" / "inference.json").read_bytes())
        problems = _network_fits(bundle, inference, files["models/model.pt"])
        if problems:
            raise ValueError(
                f"after baking {[str(c) for c in configs]} and {dict(overrides or {})} into the packed configs, "
                f"configs/inference.json alone does not build the network the weights fit: {problems}"
            )
    urls = _bundle_weight_urls(bundle)
    large_files = [
        {
            "path": rel,
            "url": (weights_url if rel == "models/model.pt" and weights_url else None)
            or urls.get(rel)
            or WEIGHTS_URL_PLACEHOLDER.replace("model.pt", Path(rel).name),
            "hash_val": md5sum(files[rel]),
            "hash_type": "md5",
        }
        for rel in ("models/model.pt", "models/model.ts")
        if rel in files
    ]
    members: dict[str, bytes | Path] = {f"{name}/{rel}": src for rel, src in files.items()}
    members.update({f"{name}/{rel}": content for rel, content in baked.items()})
    members[f"{name}/configs/metadata.json"] = meta_bytes
    members[f"{name}/large_files.yml"] = large_files_yml(large_files)
    zip_path = out / f"{name}_v{version}.zip"
    entries = write_deterministic_zip(zip_path, members)
    digest, sha256 = md5sum(zip_path), sha256sum(zip_path)
    for suffix, value in ((".sha256", sha256), (".md5", digest)):
        _write_atomic(Path(str(zip_path) + suffix), f"{value}  {zip_path.name}\n".encode())
    return PackResult(zip_path, digest, zip_path.stat().st_size, name, version, entries, sha256)


def _write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary name next to ``path`` and rename it, so ``path`` is never half-written."""
    tmp = path.with_name(path.name + ".part")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


class BundleVerificationError(ValueError):
    """A bundle zip fails verification: checksum mismatch, unsafe member or wrong layout (the message names the zip
    and the member)."""


_HEX_LENGTH = {"sha256": 64, "md5": 32}
_HEX_RE = re.compile(r"^[0-9a-f]+$")


def _expected_hex(value: str, algorithm: str, source: str) -> str:
    value = value.strip().lower()
    if len(value) != _HEX_LENGTH[algorithm] or not _HEX_RE.match(value):
        raise ValueError(f"{source}: {value!r} is not a {algorithm} checksum ({_HEX_LENGTH[algorithm]} hex digits)")
    return value


def read_checksum_file(path: str | os.PathLike, algorithm: str) -> str:
    """The checksum in a ``sha256sum``/``md5sum`` file (``<hex>  <file name>``, the first word counts).

    Raises:
        FileNotFoundError: no such file.
        ValueError: the first word is not a checksum of ``algorithm`` (``"sha256"`` or ``"md5"``).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checksum file not found: {path}")
    words = path.read_text(encoding="utf-8", errors="replace").split()
    return _expected_hex(words[0] if words else "", algorithm, str(path))


def unsafe_members(infos: Sequence[zipfile.ZipInfo]) -> list[str]:
    """The members an extraction must refuse, as ``"'<name>': why"``: a ``..`` component or an absolute path (drive
    letters and backslashes included), which would write outside the target folder (zip slip), a symbolic link, or a
    name that occurs twice."""
    problems = []
    seen: set[str] = set()
    for info in infos:
        name = info.filename
        if name in seen:
            problems.append(f"{name!r}: duplicate member")
        seen.add(name)
        parts = name.replace("\\", "/").split("/")
        if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
            problems.append(f"{name!r}: absolute path")
        elif ".." in parts:
            problems.append(f"{name!r}: '..' leads out of the bundle folder")
        elif "\x00" in name:
            problems.append(f"{name!r}: NUL character in the name")
        if stat.S_ISLNK(info.external_attr >> 16):
            problems.append(f"{name!r}: symbolic link")
    return problems


def _bundle_layout(path: Path, zf: zipfile.ZipFile) -> str:
    """The bundle name (the one top folder) of an archive; raises when it is not one folder with the metadata."""
    infos = [i for i in zf.infolist() if not i.is_dir()]
    tops = {i.filename.split("/", 1)[0] for i in infos}
    if len(tops) != 1 or any("/" not in i.filename for i in infos):
        raise BundleVerificationError(f"{path} must hold exactly one top folder, found {sorted(tops)}")
    name = tops.pop()
    if not _NAME_RE.match(name):
        raise BundleVerificationError(f"{path}: invalid bundle folder name {name!r}")
    if f"{name}/configs/metadata.json" not in zf.namelist():
        raise BundleVerificationError(f"{path} has no {name}/configs/metadata.json")
    return name


def verify_bundle_zip(
    zip_file: str | os.PathLike,
    sha256: str | None = None,
    md5_file: str | os.PathLike | None = None,
    sha256_file: str | os.PathLike | None = None,
) -> dict:
    """Verify a bundle zip before anything is unpacked or run: checksum first, then every member and the layout.

    1. The checksum of the file's bytes (nothing is parsed before): ``sha256`` (hex), the checksum in ``sha256_file``
       and/or in ``md5_file``; with none given, the ``<zip>.sha256`` and ``<zip>.md5`` files next to the zip (they
       catch a corrupt or altered zip, not one whose checksum files were replaced with it: prefer a sha256 from the
       publisher). No checksum at all is an error.
    2. No member may have a ``..`` component, an absolute path or be a symbolic link (:func:`unsafe_members`).
    3. One top folder ``<name>/`` (a valid bundle name) holding ``configs/metadata.json``.

    Returns:
        ``{"path", "name", "sha256", "md5", "checked": [what was compared], "members": count}``.

    Raises:
        FileNotFoundError: the zip or a checksum file does not exist.
        BundleVerificationError: a checksum mismatch, an unsafe member, not a zip, or not a bundle layout; the message
            names the zip and the checksum or member.
        ValueError: a given checksum is malformed.
    """
    path = Path(zip_file)
    if not path.is_file():
        raise FileNotFoundError(f"bundle zip not found: {path}")
    expected: list[tuple[str, str, str]] = []  # (algorithm, hex, where it came from)
    if sha256 is not None:
        expected.append(("sha256", _expected_hex(sha256, "sha256", "--sha256"), "--sha256"))
    for algorithm, given in (("sha256", sha256_file), ("md5", md5_file)):
        if given is not None:
            expected.append((algorithm, read_checksum_file(given, algorithm), str(given)))
    if not expected:
        for algorithm in ("sha256", "md5"):
            sidecar = Path(f"{path}.{algorithm}")
            if sidecar.is_file():
                expected.append((algorithm, read_checksum_file(sidecar, algorithm), str(sidecar)))
    if not expected:
        raise BundleVerificationError(
            f"{path}: no checksum to verify against; pass --sha256 <hex from the publisher> (or --md5-file)"
        )
    actual = {"sha256": sha256sum(path), "md5": md5sum(path)}
    for algorithm, value, source in expected:
        if actual[algorithm] != value:
            raise BundleVerificationError(
                f"{path}: {algorithm} {actual[algorithm]} does not match {value} ({source}); the zip is corrupt or "
                "was altered: do not install or run it"
            )
    if not zipfile.is_zipfile(path):
        raise BundleVerificationError(f"{path} is not a zip file")
    with zipfile.ZipFile(path) as zf:
        problems = unsafe_members(zf.infolist())
        if problems:
            raise BundleVerificationError(
                f"{path} has {len(problems)} unsafe member(s), refused before extracting anything: "
                + "; ".join(problems)
            )
        name = _bundle_layout(path, zf)
        count = len(zf.infolist())
    return {
        "path": str(path),
        "name": name,
        "sha256": actual["sha256"],
        "md5": actual["md5"],
        "checked": [f"{algorithm} ({source})" for algorithm, _, source in expected],
        "members": count,
    }


def _download(url: str, folder: Path) -> Path:
    """Download ``url`` to ``folder/download.zip`` (no checks here: the caller verifies the file)."""
    import shutil
    import urllib.request

    out_path = folder / "download.zip"
    try:
        with open(out_path, "xb") as out, urllib.request.urlopen(url, timeout=60) as response:  # noqa: S310
            shutil.copyfileobj(response, out)
    except Exception as e:
        raise ValueError(f"cannot download {url}: {e}") from e
    return out_path


def install_bundle(
    source: str | os.PathLike,
    sha256: str,
    bundle_dir: str | os.PathLike,
    replace: bool = False,
    allow_url: bool = False,
) -> dict:
    """Verify a bundle zip against ``sha256``, then unpack it safely as ``<bundle_dir>/<name>/``.

    Order: (1) ``source`` is copied to a private temporary file (with ``allow_url``, an ``http(s)://`` ``source`` is
    downloaded there), so the bytes unpacked are the bytes verified; (2) its sha256 is compared with ``sha256``
    before the file is opened as a zip; (3) every member is checked (no ``..``, absolute path, symbolic link or
    duplicate; one top folder with ``configs/metadata.json``: :func:`verify_bundle_zip`) before any file is written
    into ``bundle_dir``; (4) the members are written into a temporary folder inside ``bundle_dir``, each path checked
    again to lie inside it, and the folder is renamed to ``<name>`` (an existing one is replaced only with
    ``replace``). Any failure removes what was written, so ``bundle_dir`` is left as it was.

    Args:
        source: the zip (a local path; a URL only with ``allow_url``).
        sha256: the zip's sha256 as published (64 hex digits).
        bundle_dir: the folder to install into (created when missing, after verification).
        replace: replace an installed ``<bundle_dir>/<name>``.
        allow_url: allow ``source`` to be an ``http://`` or ``https://`` URL.

    Returns:
        ``{"path": bundle folder, "name", "version", "sha256", "files": count}``.

    Raises:
        FileNotFoundError: ``source`` does not exist.
        BundleVerificationError: checksum mismatch, unsafe member, not a bundle layout.
        ValueError: a URL without ``allow_url``, a malformed checksum, a failed download, or an existing bundle
            without ``replace``.
    """
    import shutil
    import tempfile

    expected = _expected_hex(sha256, "sha256", "--sha256")
    target_root = Path(bundle_dir).expanduser().resolve()
    text = str(source)
    is_url = re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", text) is not None
    if is_url and (not allow_url or not text.lower().startswith(("http://", "https://"))):
        raise ValueError(f"{text} is a URL: pass --allow-url to download it (http/https; verified before use)")
    if not is_url and not Path(source).is_file():
        raise FileNotFoundError(f"bundle zip not found: {source}")
    # verify and unpack a private copy, so the bytes unpacked are the bytes whose checksum matched
    scratch = Path(tempfile.mkdtemp(prefix="monai_lexu_install_"))
    created = not target_root.exists()
    try:
        if is_url:
            zip_path = _download(text, scratch)
        else:
            zip_path = scratch / Path(source).name
            shutil.copyfile(source, zip_path)
        try:
            report = verify_bundle_zip(zip_path, sha256=expected)
        except BundleVerificationError as e:  # name the zip as the user gave it, not the private copy
            raise BundleVerificationError(str(e).replace(str(zip_path), text)) from None
        name = report["name"]
        dest = target_root / name
        if (dest.exists() or dest.is_symlink()) and not replace:
            raise ValueError(f"{dest} already exists: remove it or pass --replace")
        target_root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{name}.installing-", dir=target_root))
        try:
            files = 0
            with zipfile.ZipFile(zip_path) as zf:
                for info in zf.infolist():
                    out = (staging / info.filename).resolve()
                    if not out.is_relative_to(staging):  # defence in depth: verify_bundle_zip refused these already
                        raise BundleVerificationError(f"{text}: member {info.filename!r} leads out of the folder")
                    if info.is_dir():
                        out.mkdir(parents=True, exist_ok=True)
                        continue
                    out.parent.mkdir(parents=True, exist_ok=True)
                    with zf.open(info) as src, open(out, "xb") as dst:
                        shutil.copyfileobj(src, dst)
                    files += 1
            try:
                metadata = json.loads((staging / name / "configs" / "metadata.json").read_text(encoding="utf-8"))
            except json.JSONDecodeError as e:
                raise BundleVerificationError(f"{text}: {name}/configs/metadata.json is not valid JSON: {e}") from e
            previous = None
            if dest.exists() or dest.is_symlink():
                previous = staging / ".previous"  # removed with the staging folder once the new one is in place
                os.replace(dest, previous)
            try:
                os.replace(staging / name, dest)
            except BaseException:
                if previous is not None:
                    os.replace(previous, dest)
                raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    except BaseException:
        if created and target_root.is_dir() and not any(target_root.iterdir()):
            target_root.rmdir()
        raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return {
        "path": str(dest),
        "name": name,
        "version": metadata.get("version") if isinstance(metadata, Mapping) else None,
        "sha256": report["sha256"],
        "files": files,
    }


def bundle_info(zip_file: str | os.PathLike) -> dict:
    """Describe a packed bundle: name, version, MONAI version, entries, unsafe members and the checksum files.

    Returns:
        ``{"path", "name", "version", "monai_version", "md5", "md5_ok", "sha256", "sha256_ok", "unsafe",
        "entries": [(name, size), ...]}``; ``md5_ok``/``sha256_ok`` compare with ``<zip>.md5``/``<zip>.sha256`` and
        are ``None`` when the file does not exist; ``unsafe`` lists the members an extraction must refuse
        (:func:`unsafe_members`), which the other fields ignore.

    Raises:
        FileNotFoundError: the zip does not exist.
        ValueError: not a zip, or not exactly one top folder holding ``configs/metadata.json``.
    """
    path = Path(zip_file)
    if not path.is_file():
        raise FileNotFoundError(f"bundle zip not found: {path}")
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path} is not a zip file")
    with zipfile.ZipFile(path) as zf:
        unsafe = unsafe_members(zf.infolist())
        bad = {i.filename for i in zf.infolist() if unsafe_members([i])}
        infos = [i for i in zf.infolist() if not i.is_dir() and i.filename not in bad]
        tops = {i.filename.split("/", 1)[0] for i in infos}
        if len(tops) != 1 or any("/" not in i.filename for i in infos):
            raise ValueError(f"{path} must hold exactly one top folder, found {sorted(tops)}")
        name = tops.pop()
        meta_name = f"{name}/configs/metadata.json"
        if meta_name not in zf.namelist():
            raise ValueError(f"{path} has no {meta_name}")
        metadata = json.load(io.TextIOWrapper(zf.open(meta_name), encoding="utf-8"))
        entries = [(i.filename, i.file_size) for i in zf.infolist() if not i.is_dir()]
    out: dict[str, Any] = {
        "path": str(path),
        "name": name,
        "version": metadata.get("version"),
        "monai_version": metadata.get("monai_version"),
    }
    for algorithm, digest in (("md5", md5sum(path)), ("sha256", sha256sum(path))):
        sidecar = Path(f"{path}.{algorithm}")
        ok = None
        if sidecar.is_file():
            recorded = sidecar.read_text(encoding="utf-8", errors="replace").split()
            ok = bool(recorded) and recorded[0].lower() == digest
        out[algorithm], out[f"{algorithm}_ok"] = digest, ok
    out["unsafe"] = unsafe
    out["entries"] = entries
    return out


def _resolve(bundle: Path, path: str | os.PathLike) -> Path:
    path = Path(path)
    return path if path.is_absolute() else bundle / path


def _parse_value(text: str) -> Any:
    """A ``--set`` value: JSON, else a Python literal, else the string itself."""
    for parse in (json.loads, ast.literal_eval):
        try:
            return parse(text)
        except (ValueError, SyntaxError):
            continue
    return text


def parse_set_options(items: Sequence[str]) -> dict[str, Any]:
    """``--set KEY=VALUE`` options as ``{config id: value}``: JSON values, else Python literals, else strings."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--set expects KEY=VALUE, got {item!r}")
        out[key] = _parse_value(value)
    return out


def _human(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``python -m monai_lexu.share {pack,info,verify,install} ...``. Returns the exit code."""
    prog = "python -m monai_lexu.share"
    codes = "exit code: 0 done, 1 refused or failed (one line 'error: ...'), 2 usage error."

    def described(name: str, text: str, description: str, extra: str = codes) -> dict:
        epilog = examples_epilog(__doc__, f"{prog} {name}", extra=extra)
        return {"help": text, "description": description, "epilog": epilog, "formatter_class": HelpFormatter}

    parser = argparse.ArgumentParser(
        prog=prog,
        description=__doc__.split("\n\n")[0],
        epilog=examples_epilog(__doc__, prog, extra=codes),
        formatter_class=HelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser(
        "pack",
        **described(
            "pack",
            "check a bundle and write <out>/<name>_v<version>.zip, its .sha256 and .md5",
            "Check a bundle (metadata schema, weights loadable into the network of inference.json with --config/--set)"
            " and write <out>/<name>_v<version>.zip with its .sha256 and .md5; --config/--set are baked into the "
            "packed configs. models/preprocessing.json and the weights' record models/model.json (the configs that "
            "made them) are packed when they sit next to the weights.",
        ),
    )
    p.add_argument("bundle_dir", help="bundle directory, e.g. bundles/lexu_riga")
    p.add_argument("--out", default="dist", help="output directory (default: ./dist)")
    p.add_argument("--version", default=None, help="packed version (default: metadata.json's version)")
    p.add_argument("--ckpt", default="models/model.pt", help="weights file, relative to the bundle or absolute")
    p.add_argument("--include-ts", action="store_true", help="also pack models/model.ts")
    p.add_argument("--name", default=None, help="bundle name / top folder (default: the directory name)")
    p.add_argument("--changelog", default=None, help="changelog text for a new --version")
    p.add_argument("--config", action="append", default=[], help="override config for the weights check (repeatable)")
    p.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="config override for the weights check"
    )
    p.add_argument(
        "--no-bake", action="store_true", help="pack the configs unchanged (default: bake --config/--set into them)"
    )
    p.add_argument("--weights-url", default=None, help="download URL of models/model.pt for the packed large_files.yml")
    i = sub.add_parser(
        "info",
        **described(
            "info",
            "list a packed bundle; exit 1 on a checksum mismatch with <zip>.sha256/.md5 or an unsafe member",
            "List a packed bundle: name, version, sha256/md5 compared with <zip>.sha256/.md5, and every member.",
            "exit code: 0 listed, 1 a checksum mismatch with <zip>.sha256/.md5, an unsafe member or an unreadable "
            "zip, 2 usage error.",
        ),
    )
    i.add_argument("zip", help="the bundle zip")
    v = sub.add_parser(
        "verify",
        **described(
            "verify",
            "check a bundle zip's checksum, members (no '..', absolute path or symlink) and layout",
            "Check a bundle zip without installing it: its checksum, its members (no '..', absolute path or symlink) "
            "and its layout (one top folder <name>/ with configs/metadata.json).",
        ),
    )
    v.add_argument("zip", help="the bundle zip")
    v.add_argument("--sha256", default=None, metavar="HEX", help="expected sha256 (from the publisher)")
    v.add_argument("--sha256-file", default=None, help="a sha256sum file holding the expected sha256")
    v.add_argument("--md5-file", default=None, help="an md5sum file holding the expected md5, e.g. <zip>.md5")
    n = sub.add_parser(
        "install",
        **described(
            "install",
            "verify a bundle zip's sha256 and members, then unpack it as <bundle_dir>/<name>/",
            "Verify a bundle zip's sha256 and members before anything is unpacked, then unpack it as "
            "<bundle_dir>/<name>/ (through a temporary folder: a failed install leaves nothing).",
        ),
    )
    n.add_argument("source", help="the bundle zip (a URL only with --allow-url)")
    n.add_argument("--sha256", required=True, metavar="HEX", help="the zip's sha256 as published")
    n.add_argument("--bundle_dir", "--bundle-dir", required=True, help="folder to install into")
    n.add_argument("--replace", action="store_true", help="replace an installed <bundle_dir>/<name>")
    n.add_argument("--allow-url", action="store_true", help="allow an http(s):// source (downloaded, then verified)")
    args = parser.parse_args(argv)

    try:
        if args.command == "pack":
            result = pack_bundle(
                args.bundle_dir,
                out_dir=args.out,
                version=args.version,
                ckpt=args.ckpt,
                include_ts=args.include_ts,
                name=args.name,
                configs=args.config,
                overrides=parse_set_options(args.set),
                changelog=args.changelog,
                bake=not args.no_bake,
                weights_url=args.weights_url,
            )
            print(f"packed {result.name} v{result.version}: {result.path}")
            print(f"size {result.size} bytes ({_human(result.size)}), sha256 {result.sha256}, md5 {result.md5}")
            print(f"files: {len(result.entries)}; checksums written to {result.path}.sha256 and {result.path}.md5")
            print(
                f"install (publish the sha256 with the zip): python -m monai_lexu.share install {result.path.name} "
                f"--sha256 {result.sha256} --bundle_dir <dir>"
            )
        elif args.command == "info":
            info = bundle_info(args.zip)
            print(f"{info['path']}: bundle {info['name']} version {info['version']} (monai {info['monai_version']})")
            failed = []
            for algorithm in ("sha256", "md5"):
                ok = info[f"{algorithm}_ok"]
                check = {
                    None: f"no .{algorithm} file",
                    True: f"matches .{algorithm}",
                    False: f"DOES NOT match .{algorithm}",
                }
                print(f"{algorithm} {info[algorithm]} ({check[ok]})")
                if ok is False:
                    failed.append(f"{info['path']}: {algorithm} does not match {info['path']}.{algorithm}")
            for entry, size in info["entries"]:
                print(f"{size:>12}  {entry}")
            for problem in info["unsafe"]:
                print(f"WARNING: unsafe member {problem}", file=sys.stderr)
            if info["unsafe"]:
                failed.append(f"{info['path']} has {len(info['unsafe'])} unsafe member(s): never extract or install it")
            if failed:
                raise BundleVerificationError("; ".join(failed))
        elif args.command == "verify":
            report = verify_bundle_zip(
                args.zip, sha256=args.sha256, md5_file=args.md5_file, sha256_file=args.sha256_file
            )
            print(
                f"OK {report['path']}: bundle {report['name']}, {report['members']} members, none unsafe; "
                f"{', '.join(report['checked'])} match (sha256 {report['sha256']})"
            )
        else:
            report = install_bundle(
                args.source, args.sha256, args.bundle_dir, replace=args.replace, allow_url=args.allow_url
            )
            print(f"verified sha256 {report['sha256']} and every member of {args.source}")
            print(f"installed {report['name']} version {report['version']} ({report['files']} files): {report['path']}")
            print(f"run: python -m monai.bundle run --config_file {report['path']}/configs/inference.json")
    except (OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
