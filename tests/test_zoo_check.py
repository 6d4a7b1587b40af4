"""Tests for monai_lexu.zoo_check: each refusal of the model-zoo checks on small real files in tmp_path.

The bundles themselves are checked by ``make zoo-check`` (packed with trained weights); these tests only show that
the checker refuses what the zoo refuses. Nothing here trains, and pip is never called (its runs are faked).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from monai_lexu import zoo_check
from monai_lexu.zoo_check import (
    CheckFailed,
    PinResolver,
    Target,
    bundle_requirements,
    check_bundle_root,
    check_files,
    check_format,
    check_metadata,
    check_target,
    check_version,
    json_format_problem,
    large_files_problems,
    text_file_problems,
)

REPO = Path(__file__).resolve().parents[1]
SOURCE = REPO / "bundles" / "lexu_riga"
ALL_BUT = {name: [c for c in zoo_check.CHECKS if c != name] for name in zoo_check.CHECKS}


def _bundle(root: Path, name: str = "tiny", weights: bool = True) -> Path:
    """A small bundle folder: lexu_riga's metadata, a one-key inference config, docs, LICENSE, large_files.yml."""
    bundle = root / name
    (bundle / "configs").mkdir(parents=True)
    (bundle / "docs").mkdir()
    (bundle / "models").mkdir()
    shutil.copy(SOURCE / "configs" / "metadata.json", bundle / "configs" / "metadata.json")
    config = {
        "imports": ["$import monai_lexu", "$import monai_lexu.utils"],
        "bundle_root": f"$monai_lexu.utils.find_bundle_root('{name}')",
    }
    (bundle / "configs" / "inference.json").write_text(json.dumps(config, indent=4) + "\n")
    for rel in ("LICENSE", "docs/README.md", "docs/data_license.txt"):
        (bundle / rel).write_text("text\n")
    entry = {"path": "models/model.pt", "url": "https://example.org/model.pt", "hash_val": "", "hash_type": "md5"}
    if weights:
        (bundle / "models" / "model.pt").write_bytes(b"weights")
        entry["hash_val"] = hashlib.md5(b"weights").hexdigest()
    (bundle / "large_files.yml").write_text(json.dumps({"large_files": [entry]}) + "\n")  # JSON is YAML
    return bundle


def _edit_metadata(bundle: Path, **changes) -> None:
    meta = json.loads((bundle / "configs" / "metadata.json").read_text())
    for key, value in changes.items():
        if value is None:
            del meta[key]
        else:
            meta[key] = value
    (bundle / "configs" / "metadata.json").write_text(json.dumps(meta, indent=4) + "\n")


def test_the_small_bundle_passes_the_file_checks(tmp_path):
    target = Target(tmp_path, _bundle(tmp_path), packed=True)
    check_files(target)
    check_version(target)
    check_metadata(target)
    check_format(target)
    assert large_files_problems(target.bundle, require_weights=True) == []


def test_refuses_metadata_without_required_packages_version(tmp_path):
    bundle = _bundle(tmp_path)
    _edit_metadata(bundle, required_packages_version=None)
    with pytest.raises(CheckFailed, match="'required_packages_version' is a required property"):
        check_metadata(Target(bundle, bundle, packed=False))


def test_refuses_metadata_declaring_another_schema(tmp_path):
    bundle = _bundle(tmp_path)
    _edit_metadata(bundle, schema="https://example.org/meta_schema_20220324.json")
    with pytest.raises(CheckFailed, match="shipped .*meta_schema_20240725.json"):
        check_metadata(Target(bundle, bundle, packed=False))


def test_refuses_a_version_missing_from_the_changelog(tmp_path):
    bundle = _bundle(tmp_path)
    _edit_metadata(bundle, version="9.9.9")
    with pytest.raises(CheckFailed, match="version '9.9.9' has no entry in 'changelog'"):
        check_version(Target(bundle, bundle, packed=False))


def test_refuses_json_without_final_newline(tmp_path):
    bundle = _bundle(tmp_path)
    config = bundle / "configs" / "inference.json"
    config.write_text(config.read_text().rstrip("\n"))
    assert json_format_problem(config) == "no newline at the end of the file"
    with pytest.raises(CheckFailed, match="configs/inference.json: no newline at the end of the file"):
        check_format(Target(bundle, bundle, packed=False))


def test_refuses_json_that_is_not_4_space_pretty_or_has_duplicate_keys(tmp_path):
    compact, sorted_keys, dupes, unicode = (tmp_path / f"{n}.json" for n in ("compact", "sorted", "dupes", "unicode"))
    compact.write_text('{"b": 1, "a": [1, 2]}\n')
    sorted_keys.write_text(json.dumps({"b": 1, "a": 2}, indent=2) + "\n")
    dupes.write_text('{\n    "a": 1,\n    "a": 2\n}\n')
    unicode.write_text('{\n    "mu": "\u00b5m"\n}\n', encoding="utf-8")  # the hook escapes non-ASCII characters
    assert "not 4-space pretty JSON" in json_format_problem(compact)
    assert "not 4-space pretty JSON" in json_format_problem(sorted_keys)
    assert json_format_problem(dupes) == "duplicate keys ['a']"
    assert "not 4-space pretty JSON" in json_format_problem(unicode)
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"b": 1, "a": {"x": [1, 2]}, "mu": "\u00b5m"}, indent=4) + "\n")
    assert json_format_problem(good) is None  # key order is kept (--no-sort-keys)


def test_refuses_text_files_the_zoo_hooks_would_fix(tmp_path):
    cases = {
        "trailing.md": (b"line  \n", "trailing whitespace"),
        "mixed.txt": (b"a\r\nb\n", "mixed line endings"),
        "blank.txt": (b"a\n\n", "ends with blank lines"),
        "bad.yml": (b"a: [1, 2\n", "not valid YAML"),
        "key.txt": (b"-----BEGIN RSA PRIVATE KEY-----\n", "private key"),
    }
    for name, (content, problem) in cases.items():
        (tmp_path / name).write_bytes(content)
        assert any(problem in p for p in text_file_problems(tmp_path / name)), name
    (tmp_path / "ok.md").write_bytes(b"# title\n\ntext\n")
    assert text_file_problems(tmp_path / "ok.md") == []


def test_refuses_a_pack_without_models_model_pt(tmp_path):
    bundle = _bundle(tmp_path / "src", weights=False)
    pack = tmp_path / "tiny_v0.1.0.zip"
    with zipfile.ZipFile(pack, "w") as zf:
        for path in sorted(p for p in bundle.rglob("*") if p.is_file()):
            zf.write(path, f"tiny/{path.relative_to(bundle).as_posix()}")
    target = check_target(pack, skip=ALL_BUT["files"])
    (files,) = [r for r in target.results if r.name == "files"]
    assert files.status == "fail" and "models/model.pt" in files.detail and not target.ok
    # a bundle folder may leave the weights to large_files.yml, as a model-zoo pull request does
    folder = check_target(bundle, skip=ALL_BUT["files"])
    assert folder.ok and "large_files.yml names where it comes from" in folder.results[0].detail


def test_refuses_large_files_outside_the_bundle_or_with_a_wrong_hash(tmp_path):
    bundle = _bundle(tmp_path)
    entries = [
        {"path": "../escape.pt", "url": "https://example.org/a", "hash_val": "", "hash_type": "md5"},
        {"path": "models/model.pt", "url": "https://example.org/b", "hash_val": "0" * 32, "hash_type": "md5"},
        {"path": "models/model.ts", "url": "not a url", "hash_val": "abc", "hash_type": "md5"},
    ]
    (bundle / "large_files.yml").write_text(json.dumps({"large_files": entries}))
    problems = " | ".join(large_files_problems(bundle, require_weights=True))
    assert "'../escape.pt' is outside the bundle" in problems
    assert "models/model.pt has md5 " in problems
    assert "is not an http(s) URL" in problems and "is not a md5 hex digest" in problems
    (bundle / "large_files.yml").unlink()
    assert "no large_files.yml" in large_files_problems(bundle)[0]


def test_bundle_root_from_a_zoo_layout_and_refuses_a_cwd_relative_root(tmp_path):
    bundle = _bundle(tmp_path / "zoo")
    assert str(bundle) in check_bundle_root(Target(bundle, bundle, packed=True), tmp_path / "scratch")
    (bundle / "configs" / "inference.json").write_text(json.dumps({"bundle_root": "."}, indent=4) + "\n")
    with pytest.raises(CheckFailed, match="bundle_root resolves to"):
        check_bundle_root(Target(bundle, bundle, packed=True), tmp_path / "scratch2")


def test_pins_are_the_zoos_and_resolved_once_per_pin_set(tmp_path, monkeypatch):
    meta = json.loads((SOURCE / "configs" / "metadata.json").read_text())
    reqs = bundle_requirements(meta)
    assert reqs[:3] == [f"monai=={meta['monai_version']}", f"torch=={meta['pytorch_version']}", "numpy==2.4.6"]
    assert "scipy==1.17.1" in reqs and not any(r.startswith("monai-lexu") for r in reqs)
    calls = []

    def fake_pip(cmd, **kwargs):
        calls.append(cmd)
        report = Path(cmd[cmd.index("--report") + 1])
        report.write_text(json.dumps({"install": [{"metadata": {"name": "x", "version": "1"}}]}))
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(zoo_check.subprocess, "run", fake_pip)
    assert "resolve together" in PinResolver(tmp_path / "cache").resolve(reqs)
    assert "(cached)" in PinResolver(tmp_path / "cache").resolve(list(reversed(reqs)))  # a new process, same pins
    assert len(calls) == 1 and {"--dry-run", "--ignore-installed"} <= set(calls[0])


def test_refuses_conflicting_pins_and_says_when_pip_is_unreachable(tmp_path, monkeypatch):
    outputs = {
        "conflict": "ERROR: Cannot install scipy==1.14.0 and numpy==2.4.0 because these package versions have "
        "conflicting dependencies.\nThe conflict is caused by:\n    scipy 1.14.0 depends on numpy<2.3\n\n"
        "ERROR: ResolutionImpossible",
        "offline": "WARNING: Retrying ... Failed to establish a new connection: [Errno 101] Network is unreachable\n"
        "ERROR: Could not find a version that satisfies the requirement monai==1.6.1",
    }
    for kind, output in outputs.items():
        monkeypatch.setattr(
            zoo_check.subprocess, "run", lambda cmd, out=output, **kw: subprocess.CompletedProcess(cmd, 1, "", out)
        )
        with pytest.raises(CheckFailed) as err:
            PinResolver(tmp_path / kind).resolve(["scipy==1.14.0", "numpy==2.4.0"])
        if kind == "conflict":
            assert "do not resolve together" in str(err.value) and "scipy 1.14.0 depends on numpy<2.3" in str(err.value)
        else:
            assert "cannot reach the package index, so the pins were NOT checked" in str(err.value)
        assert not list((tmp_path / kind).glob("*.json"))  # failures are never cached


def test_cli_help_and_exit_codes(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        zoo_check.main(["--help"])
    assert exit_info.value.code == 0 and "check" in capsys.readouterr().out
    bundle = _bundle(tmp_path, weights=False)
    (bundle / "docs" / "data_license.txt").unlink()
    assert zoo_check.main(["check", str(bundle), *sum((["--skip", c] for c in ALL_BUT["files"]), [])]) == 1
    assert "docs/data_license.txt" in capsys.readouterr().out


def _walk(node, keywords: set, refs: list) -> None:
    """Collect the schema keywords (not the names under properties/patternProperties/$defs) and the $ref values."""
    if isinstance(node, list):
        for item in node:
            _walk(item, keywords, refs)
    elif isinstance(node, dict):
        for key, value in node.items():
            if key in ("properties", "patternProperties", "$defs"):
                keywords.add(key)
                for child in value.values():
                    _walk(child, keywords, refs)
                continue
            keywords.add(key)
            if key == "$ref":
                refs.append(value)
            _walk(value, keywords, refs)


def test_the_shipped_schema_is_the_published_file_and_gives_draft_7s_verdict():
    """jsonschema 3.2 (MONAI Label's environments) has no draft 2019-09 and validates with draft 7: the schema must
    use only draft-7 keywords (plus the $defs container its refs point into) and plain JSON-pointer refs, so both
    drafts give the same verdict."""
    import jsonschema

    from monai_lexu.share import SCHEMA_FILE, SCHEMA_MD5, md5sum

    assert md5sum(SCHEMA_FILE) == SCHEMA_MD5
    schema = json.loads(SCHEMA_FILE.read_text())
    keywords, refs = set(), []
    _walk(schema, keywords, refs)
    draft7 = {"$schema", "$comment", "$ref", "type", "items", "required", "description", "anyOf", "properties"}
    assert keywords <= draft7 | {"patternProperties", "$defs"}
    assert refs and all(r.startswith("#/$defs/") for r in refs)
    meta = json.loads((SOURCE / "configs" / "metadata.json").read_text())
    broken = {k: v for k, v in meta.items() if k != "required_packages_version"}
    for cls in (jsonschema.Draft7Validator, jsonschema.validators.validator_for(schema)):
        assert cls(schema).is_valid(meta) and not cls(schema).is_valid(broken)
