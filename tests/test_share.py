"""Tests for monai_lexu.share: pack a bundle; verify and install packs (tampered, zip-slip, absolute and symlink
members refused before anything is written); serve a pack on 127.0.0.1, install it and run it.

The bundle under test is a copy of bundles/lexu_riga (configs, docs, LICENSE) with the weights of an untrained
CPU-size network (features [8, 16, 32, 64]); nothing is trained. Network traffic goes only to 127.0.0.1.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import os
import shutil
import stat
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from monai_lexu.share import (
    BundleVerificationError,
    bundle_info,
    check_weights,
    install_bundle,
    main,
    md5sum,
    pack_bundle,
    sha256sum,
    unsafe_members,
    validate_metadata,
    verify_bundle_zip,
    write_deterministic_zip,
)

REPO = Path(__file__).resolve().parents[1]
SOURCE = REPO / "bundles" / "lexu_riga"
FEATURES = [8, 16, 32, 64]
CPU = {"configs": ["configs/cpu_small.json"], "overrides": {"features": FEATURES}}
EXPECTED = [
    "lexu_riga/LICENSE",
    "lexu_riga/configs/cpu_small.json",
    "lexu_riga/configs/evaluate.json",
    "lexu_riga/configs/inference.json",
    "lexu_riga/configs/logging.conf",
    "lexu_riga/configs/metadata.json",
    "lexu_riga/configs/train.json",
    "lexu_riga/docs/README.md",
    "lexu_riga/docs/data_license.txt",
    "lexu_riga/large_files.yml",
    "lexu_riga/models/model.pt",
]


def _copy_bundle(dst: Path, weights: bool = True) -> Path:
    """Copy the shippable parts of lexu_riga to ``dst/lexu_riga`` and add junk that must never be packed."""
    from monai_lexu.networks import MultiHeadUNet

    bundle = dst / "lexu_riga"
    bundle.mkdir(parents=True)
    for name in ("configs", "docs"):
        shutil.copytree(SOURCE / name, bundle / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(SOURCE / "LICENSE", bundle / "LICENSE")
    for junk in ("data/riga/x.png", "eval/metrics.csv", "runs/events.out", "configs/__pycache__/a.pyc", "docs/.x.swp"):
        (bundle / junk).parent.mkdir(parents=True, exist_ok=True)
        (bundle / junk).write_bytes(b"junk")
    (bundle / "models").mkdir()
    if weights:
        torch.manual_seed(0)
        net = MultiHeadUNet(2, 3, 2, backbone="plain", features=tuple(FEATURES))
        torch.save(net.state_dict(), bundle / "models" / "model.pt")
        (bundle / "models" / "model_epoch3.pt").write_bytes(b"other checkpoint")
    return bundle


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    return _copy_bundle(tmp_path_factory.mktemp("src"))


def test_md5sum_known_answer(tmp_path):
    (tmp_path / "abc").write_bytes(b"abc")
    assert md5sum(tmp_path / "abc") == "900150983cd24fb0d6963f7d28e17f72"


def test_write_deterministic_zip_fixed_order_times_and_modes(tmp_path):
    src = tmp_path / "b.txt"
    src.write_bytes(b"from a file")
    members = {"top/z.txt": b"zzz", "top/a/b.txt": src, "top/m.bin": bytes(range(256)) * 10}
    assert write_deterministic_zip(tmp_path / "one.zip", members) == ["top/a/b.txt", "top/m.bin", "top/z.txt"]
    os.utime(src, (0, 0))  # the source file's own timestamp must not leak into the zip
    write_deterministic_zip(tmp_path / "two.zip", dict(reversed(list(members.items()))))
    assert (tmp_path / "one.zip").read_bytes() == (tmp_path / "two.zip").read_bytes()
    with zipfile.ZipFile(tmp_path / "one.zip") as zf:
        infos = zf.infolist()
        assert [i.filename for i in infos] == ["top/a/b.txt", "top/m.bin", "top/z.txt"]
        assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}
        assert {i.external_attr >> 16 for i in infos} == {0o100644}
        assert zf.read("top/a/b.txt") == b"from a file" and zf.read("top/z.txt") == b"zzz"
    write_deterministic_zip(tmp_path / "three.zip", {**members, "top/z.txt": b"zzZ"})
    assert md5sum(tmp_path / "three.zip") != md5sum(tmp_path / "one.zip")
    assert not list(tmp_path.glob("*.part"))


def test_validate_metadata_accepts_the_bundle_and_names_each_violation(tmp_path):
    good = json.loads((SOURCE / "configs" / "metadata.json").read_text())
    assert validate_metadata(SOURCE / "configs" / "metadata.json")["version"] == good["version"]
    bad = json.loads(json.dumps(good))
    bad["network_data_format"]["outputs"]["pred"]["num_channels"] = "ten"
    del bad["monai_version"]
    with pytest.raises(ValueError) as err:
        validate_metadata(bad)
    assert "network_data_format/outputs/pred/num_channels" in str(err.value)
    assert "'monai_version' is a required property" in str(err.value)
    with pytest.raises(ValueError, match="version '9.9.9' has no entry in 'changelog'"):
        validate_metadata({**good, "version": "9.9.9"})
    (tmp_path / "metadata.json").write_text("{not json")
    with pytest.raises(ValueError, match="metadata.json is not valid JSON"):
        validate_metadata(tmp_path / "metadata.json")
    with pytest.raises(FileNotFoundError, match="nothing.json"):
        validate_metadata(tmp_path / "nothing.json")


def test_pack_without_weights_is_a_clear_error(tmp_path):
    bare = _copy_bundle(tmp_path, weights=False)
    with pytest.raises(FileNotFoundError, match=r"weights file not found: .*models/model\.pt"):
        pack_bundle(bare, tmp_path / "dist", **CPU)
    assert not (tmp_path / "dist").exists()


def test_pack_with_invalid_metadata_is_a_clear_error(tmp_path, bundle):
    broken = tmp_path / "lexu_riga"
    shutil.copytree(bundle, broken)
    meta = json.loads((broken / "configs" / "metadata.json").read_text())
    del meta["network_data_format"]["inputs"]["image"]["num_channels"]
    (broken / "configs" / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match=r"metadata\.json does not match the schema[\s\S]*num_channels"):
        pack_bundle(broken, tmp_path / "dist", **CPU)
    assert not (tmp_path / "dist").exists()


def test_weights_that_do_not_fit_the_network_are_a_clear_error(bundle):
    # without the CPU override inference.json builds the resnet50 network
    with pytest.raises(ValueError, match=r"do not fit the network 'network_def'.*missing keys.*unexpected keys"):
        check_weights(bundle)
    with pytest.raises(
        ValueError,
        match=r"15 shape mismatches \(encoder\.levels\.3\.convs\.conv_0\.conv\.weight "
        r"\(64, 32, 3, 3\) vs \(128, 32, 3, 3\)",
    ):
        check_weights(bundle, configs=["configs/cpu_small.json"], overrides={"features": [8, 16, 32, 128]})
    assert check_weights(bundle, **CPU) == len(torch.load(bundle / "models" / "model.pt", weights_only=True))


def test_pack_twice_gives_the_same_md5_and_only_shippable_files(tmp_path, bundle):
    first = pack_bundle(bundle, tmp_path / "a", **CPU)
    second = pack_bundle(bundle, tmp_path / "b", **CPU)
    assert first.path == tmp_path / "a" / "lexu_riga_v0.1.0.zip"
    assert first.md5 == second.md5 == hashlib.md5(first.path.read_bytes()).hexdigest()
    assert first.path.read_bytes() == second.path.read_bytes()
    assert first.size == first.path.stat().st_size
    assert (tmp_path / "a" / "lexu_riga_v0.1.0.zip.md5").read_text() == f"{first.md5}  lexu_riga_v0.1.0.zip\n"
    assert first.sha256 == hashlib.sha256(first.path.read_bytes()).hexdigest() == sha256sum(first.path)
    assert (tmp_path / "a" / "lexu_riga_v0.1.0.zip.sha256").read_text() == f"{first.sha256}  lexu_riga_v0.1.0.zip\n"
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == [
        "lexu_riga_v0.1.0.zip",
        "lexu_riga_v0.1.0.zip.md5",
        "lexu_riga_v0.1.0.zip.sha256",
    ]
    with zipfile.ZipFile(first.path) as zf:
        assert zf.namelist() == EXPECTED == first.entries
        assert zf.read("lexu_riga/models/model.pt") == (bundle / "models" / "model.pt").read_bytes()
        packed_meta = json.loads(zf.read("lexu_riga/configs/metadata.json"))
    # the packed metadata is the bundle's with the CPU recipe's _meta_ block (its network's head count) written in
    meta = json.loads((bundle / "configs" / "metadata.json").read_text())
    recipe_meta = json.loads((bundle / "configs" / "cpu_small.json").read_text())["_meta_"]
    for config_id, value in recipe_meta.items():
        *parents, last = config_id.split("#")
        node = meta
        for part in parents:
            node = node[part]
        node[last] = value
    assert packed_meta == meta


def test_pack_bakes_the_weights_overrides_and_names_the_weights_in_large_files(tmp_path, bundle):
    import yaml

    from monai_lexu.share import WEIGHTS_URL_PLACEHOLDER

    result = pack_bundle(bundle, tmp_path / "baked", **CPU)
    with zipfile.ZipFile(result.path) as zf:
        inference = json.loads(zf.read("lexu_riga/configs/inference.json"))
        train = json.loads(zf.read("lexu_riga/configs/train.json"))
        evaluate = zf.read("lexu_riga/configs/evaluate.json")
        large = yaml.safe_load(zf.read("lexu_riga/large_files.yml"))
    cpu = json.loads((bundle / "configs" / "cpu_small.json").read_text())
    # the packed inference.json alone builds the network the weights fit; train.json is the recipe that made them
    assert inference["features"] == train["features"] == FEATURES and inference["backbone"] == "plain"
    assert train["epochs"] == cpu["epochs"] and "epochs" not in inference  # ids a config lacks are not added
    assert evaluate == (bundle / "configs" / "evaluate.json").read_bytes()
    assert large == {
        "large_files": [
            {
                "path": "models/model.pt",
                "url": WEIGHTS_URL_PLACEHOLDER,
                "hash_val": md5sum(bundle / "models" / "model.pt"),
                "hash_type": "md5",
            }
        ]
    }
    plain = pack_bundle(bundle, tmp_path / "plain", bake=False, weights_url="https://example.org/w.pt", **CPU)
    with zipfile.ZipFile(plain.path) as zf:
        assert zf.read("lexu_riga/configs/inference.json") == (bundle / "configs" / "inference.json").read_bytes()
        assert (
            yaml.safe_load(zf.read("lexu_riga/large_files.yml"))["large_files"][0]["url"] == "https://example.org/w.pt"
        )
    # a recipe's metadata: the override file's _meta_ block and _meta_# ids are written into metadata.json
    recipe = tmp_path / "cpu_recipe.json"
    recipe.write_text(json.dumps({"features": FEATURES, "_meta_": {"pred_classes": "3 heads x 2 structures"}}))
    heads3 = {"_meta_#network_data_format#outputs#pred#num_channels": 6}
    meta_pack = pack_bundle(bundle, tmp_path / "meta", configs=[*CPU["configs"], recipe], overrides=heads3)
    with zipfile.ZipFile(meta_pack.path) as zf:
        meta = json.loads(zf.read("lexu_riga/configs/metadata.json"))
    assert meta["pred_classes"] == "3 heads x 2 structures"
    assert meta["network_data_format"]["outputs"]["pred"]["num_channels"] == 6
    assert meta["network_data_format"]["outputs"]["pred"]["dtype"] == "float32"
    with pytest.raises(ValueError, match="'no_such_id' is defined by no config"):
        pack_bundle(bundle, tmp_path / "bad", configs=CPU["configs"], overrides={**CPU["overrides"], "no_such_id": 1})


def test_pack_new_version_updates_only_the_packed_metadata(tmp_path, bundle):
    before = (bundle / "configs" / "metadata.json").read_bytes()
    result = pack_bundle(bundle, tmp_path, version="0.2.0", changelog="CPU weights", **CPU)
    assert result.path.name == "lexu_riga_v0.2.0.zip" and result.version == "0.2.0"
    with zipfile.ZipFile(result.path) as zf:
        meta = json.loads(zf.read("lexu_riga/configs/metadata.json"))
    assert meta["version"] == "0.2.0"
    assert list(meta["changelog"].items())[:2] == [
        ("0.2.0", "CPU weights"),
        ("0.1.0", json.loads(before)["changelog"]["0.1.0"]),
    ]
    assert (bundle / "configs" / "metadata.json").read_bytes() == before
    with pytest.raises(ValueError, match="version"):
        pack_bundle(bundle, tmp_path, version="not a version", **CPU)


def test_pack_other_checkpoint_name_ts_and_out_checks(tmp_path, bundle):
    other = tmp_path / "best.pt"
    shutil.copy(bundle / "models" / "model.pt", other)
    (tmp_path / "preprocessing.json").write_text('{"spacing": [2.0, 2.0, 2.0]}\n')  # a recipe recorded by training
    result = pack_bundle(bundle, tmp_path / "dist", ckpt=other, name="lexu_riga_cpu", **CPU)
    with zipfile.ZipFile(result.path) as zf:
        assert "lexu_riga_cpu/models/model.pt" in zf.namelist() and result.path.name == "lexu_riga_cpu_v0.1.0.zip"
        assert zf.read("lexu_riga_cpu/models/preprocessing.json") == (tmp_path / "preprocessing.json").read_bytes()
        assert "lexu_riga_cpu/models/model.json" not in zf.namelist()  # best.pt has no record


def test_pack_ships_the_weights_record(tmp_path, bundle):
    models = tmp_path / "models"
    models.mkdir()
    shutil.copy(bundle / "models" / "model.pt", models / "model.pt")
    record = {"weights": "model.pt", "config_file": ["configs/train.json", "configs/cpu_small.json"], "overrides": {}}
    (models / "model.json").write_text(json.dumps(record))
    result = pack_bundle(bundle, tmp_path / "dist", ckpt=models / "model.pt", **CPU)
    with zipfile.ZipFile(result.path) as zf:
        assert json.loads(zf.read("lexu_riga/models/model.json")) == record
    with pytest.raises(FileNotFoundError, match="model.ts not found: export it first with .*ckpt_export"):
        pack_bundle(bundle, tmp_path / "dist", include_ts=True, **CPU)
    with pytest.raises(ValueError, match="inside the packed folder"):
        pack_bundle(bundle, bundle / "docs" / "dist", **CPU)
    with pytest.raises(ValueError, match="invalid bundle name"):
        pack_bundle(bundle, tmp_path / "dist", name="../evil", **CPU)


def test_info_lists_the_content_and_checks_the_md5(tmp_path, bundle, capsys):
    result = pack_bundle(bundle, tmp_path, **CPU)
    info = bundle_info(result.path)
    assert (info["name"], info["version"], info["monai_version"], info["md5_ok"]) == (
        "lexu_riga",
        "0.1.0",
        "1.6.1",
        True,
    )
    assert [e for e, _ in info["entries"]] == EXPECTED
    assert dict(info["entries"])["lexu_riga/LICENSE"] == (bundle / "LICENSE").stat().st_size
    assert main(["info", str(result.path)]) == 0
    assert "bundle lexu_riga version 0.1.0" in capsys.readouterr().out
    assert bundle_info(result.path)["sha256_ok"] is True and bundle_info(result.path)["unsafe"] == []
    Path(f"{result.path}.md5").write_text("0" * 32 + "  x.zip\n")
    assert bundle_info(result.path)["md5_ok"] is False
    capsys.readouterr()
    assert main(["info", str(result.path)]) == 1  # a checksum mismatch is an error, not only a remark
    out = capsys.readouterr()
    assert "md5 " + result.md5 + " (DOES NOT match .md5)" in out.out
    assert f"error: {result.path}: md5 does not match {result.path}.md5" in out.err
    (tmp_path / "flat.zip").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="flat.zip is not a zip file"):
        bundle_info(tmp_path / "flat.zip")


def test_cli_reports_errors_with_exit_code_1(tmp_path, capsys):
    bare = _copy_bundle(tmp_path, weights=False)
    assert main(["pack", str(bare), "--out", str(tmp_path / "dist"), "--set", "features=[8,16,32,64]"]) == 1
    assert "error: weights file not found" in capsys.readouterr().err
    with pytest.raises(ValueError, match="KEY=VALUE"):
        from monai_lexu.share import parse_set_options

        parse_set_options(["features"])


@pytest.fixture(scope="module")
def packed(bundle, tmp_path_factory) -> Path:
    """A pack of the test bundle, with its .sha256 and .md5 files."""
    return pack_bundle(bundle, tmp_path_factory.mktemp("packed"), **CPU).path


def _tampered(packed: Path, dst: Path) -> Path:
    """A copy of ``packed`` with one byte changed (a stored member's content, so the zip still opens)."""
    data = bytearray(packed.read_bytes())
    data[len(data) // 2] ^= 0x01
    dst.write_bytes(bytes(data))
    return dst


def _with_member(packed: Path, dst: Path, name: str, symlink_to: str | None = None) -> Path:
    """A copy of ``packed`` with one more member ``name`` (a symbolic link to ``symlink_to`` when given)."""
    with zipfile.ZipFile(packed) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            zout.writestr(info, zin.read(info))
        info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
        info.create_system = 3
        info.external_attr = ((stat.S_IFLNK | 0o777) if symlink_to else (stat.S_IFREG | 0o644)) << 16
        zout.writestr(info, symlink_to.encode() if symlink_to else b"written outside the bundle")
    return dst


def _listing(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")) if folder.exists() else []


def test_verify_and_install_a_good_pack(tmp_path, packed, capsys):
    digest = sha256sum(packed)
    assert main(["verify", str(packed), "--sha256", digest]) == 0
    assert main(["verify", str(packed), "--md5-file", f"{packed}.md5"]) == 0
    assert main(["verify", str(packed)]) == 0  # the .sha256/.md5 files next to it
    out = capsys.readouterr().out
    assert f"OK {packed}: bundle lexu_riga, {len(EXPECTED)} members, none unsafe" in out
    assert f"sha256 (--sha256) match (sha256 {digest})" in out and f"md5 ({packed}.md5) match" in out
    report = verify_bundle_zip(packed, sha256=digest.upper())
    assert (report["name"], report["members"], report["md5"]) == ("lexu_riga", len(EXPECTED), md5sum(packed))

    target = tmp_path / "bundles"
    assert main(["install", str(packed), "--sha256", digest, "--bundle_dir", str(target)]) == 0
    out = capsys.readouterr().out
    assert f"installed lexu_riga version 0.1.0 ({len(EXPECTED)} files): {target / 'lexu_riga'}" in out
    assert f"run: python -m monai.bundle run --config_file {target / 'lexu_riga'}/configs/inference.json" in out
    assert [f for f in _listing(target) if (target / f).is_file()] == EXPECTED  # no staging or download leftovers
    with zipfile.ZipFile(packed) as zf:
        for name in EXPECTED:
            assert (target / name).read_bytes() == zf.read(name), name
    # an installed bundle is replaced only on request, and then completely
    assert main(["install", str(packed), "--sha256", digest, "--bundle_dir", str(target)]) == 1
    assert f"error: {target / 'lexu_riga'} already exists: remove it or pass --replace" in capsys.readouterr().err
    (target / "lexu_riga" / "stale.txt").write_text("from the old install")
    assert main(["install", str(packed), "--sha256", digest, "--bundle_dir", str(target), "--replace"]) == 0
    assert [f for f in _listing(target) if (target / f).is_file()] == EXPECTED


def test_verify_needs_a_well_formed_checksum(tmp_path, packed, capsys):
    bare = tmp_path / packed.name
    shutil.copy(packed, bare)  # no .sha256/.md5 next to it
    assert main(["verify", str(bare)]) == 1
    assert f"error: {bare}: no checksum to verify against; pass --sha256" in capsys.readouterr().err
    assert main(["verify", str(bare), "--sha256", "abc"]) == 1
    assert "error: --sha256: 'abc' is not a sha256 checksum (64 hex digits)" in capsys.readouterr().err
    assert main(["install", str(bare), "--sha256", "g" * 64, "--bundle_dir", str(tmp_path / "b")]) == 1
    assert "is not a sha256 checksum" in capsys.readouterr().err
    assert main(["install", str(tmp_path / "none.zip"), "--sha256", "0" * 64, "--bundle_dir", str(tmp_path / "b")]) == 1
    assert f"error: bundle zip not found: {tmp_path / 'none.zip'}" in capsys.readouterr().err
    url = "http://127.0.0.1:9/lexu_riga_v0.1.0.zip"
    assert main(["install", url, "--sha256", sha256sum(packed), "--bundle_dir", str(tmp_path / "b")]) == 1
    assert f"error: {url} is a URL: pass --allow-url" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()


def test_a_tampered_zip_is_refused_and_nothing_is_unpacked(tmp_path, packed, capsys):
    bad = _tampered(packed, tmp_path / packed.name)
    good_sha, good_md5 = sha256sum(packed), md5sum(packed)
    for suffix in (".sha256", ".md5"):  # the checksum files published with the genuine zip
        shutil.copy(f"{packed}{suffix}", f"{bad}{suffix}")
    target = tmp_path / "bundles"
    assert main(["install", str(bad), "--sha256", good_sha, "--bundle_dir", str(target)]) == 1
    err = capsys.readouterr().err
    assert f"error: {bad}: sha256 {sha256sum(bad)} does not match {good_sha} (--sha256)" in err
    assert not target.exists()
    assert main(["verify", str(bad), "--sha256", good_sha]) == 1
    assert f"{bad}: sha256 {sha256sum(bad)} does not match {good_sha}" in capsys.readouterr().err
    assert main(["verify", str(bad), "--md5-file", f"{bad}.md5"]) == 1
    assert f"{bad}: md5 {md5sum(bad)} does not match {good_md5} ({bad}.md5)" in capsys.readouterr().err
    assert main(["verify", str(bad)]) == 1
    assert main(["info", str(bad)]) == 1
    out = capsys.readouterr()
    assert "(DOES NOT match .sha256)" in out.out and "(DOES NOT match .md5)" in out.out
    assert f"error: {bad}: sha256 does not match {bad}.sha256; {bad}: md5 does not match {bad}.md5" in out.err
    with pytest.raises(BundleVerificationError, match="corrupt or was altered"):
        install_bundle(bad, good_sha, target)
    assert not target.exists() and sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [bad.name, f"{bad.name}.sha256", f"{bad.name}.md5"]
    )
    # the command line: exit code 1 and the error on stderr
    proc = subprocess.run(
        [sys.executable, "-m", "monai_lexu.share", "verify", str(bad), "--sha256", good_sha],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1 and f"error: {bad}: sha256" in proc.stderr and "do not install or run it" in proc.stderr


@pytest.mark.parametrize(
    "case, member, why",
    [
        ("zip_slip", "../../x", "'..' leads out of the bundle folder"),
        ("zip_slip_nested", "lexu_riga/../../x", "'..' leads out of the bundle folder"),
        ("absolute", "{tmp}/x", "absolute path"),
        ("symlink", "lexu_riga/configs/link.json", "symbolic link"),
    ],
)
def test_unsafe_members_are_refused_before_anything_is_written(tmp_path, packed, capsys, case, member, why):
    work = tmp_path / "a" / "b"  # "../../x" from a folder under work would reach tmp_path/a/x or tmp_path/x
    work.mkdir(parents=True)
    member = member.format(tmp=tmp_path)
    evil = _with_member(packed, work / "evil.zip", member, symlink_to="/etc/passwd" if case == "symlink" else None)
    digest = sha256sum(evil)  # the checksum matches: the publisher's zip itself is hostile
    target = work / "bundles"
    assert main(["install", str(evil), "--sha256", digest, "--bundle_dir", str(target)]) == 1
    err = capsys.readouterr().err
    assert f"error: {evil} has 1 unsafe member(s), refused before extracting anything: {member!r}: {why}" in err
    assert main(["verify", str(evil), "--sha256", digest]) == 1
    assert f"{member!r}: {why}" in capsys.readouterr().err
    assert main(["info", str(evil)]) == 1
    out = capsys.readouterr()
    assert f"WARNING: unsafe member {member!r}: {why}" in out.err and "never extract or install it" in out.err
    # nothing was written anywhere: not the bundle, not the escaping member
    assert not target.exists() and sorted(p.name for p in work.iterdir()) == ["evil.zip"]
    assert _listing(tmp_path) == ["a", "a/b", "a/b/evil.zip"]


def test_unsafe_members_names_each_kind():
    infos = [zipfile.ZipInfo(n) for n in ("ok/a.txt", "ok/../x", "/abs", "C:/win", "..\\..\\x", "ok/a.txt")]
    link = zipfile.ZipInfo("ok/link")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    assert unsafe_members([*infos, link]) == [
        "'ok/../x': '..' leads out of the bundle folder",
        "'/abs': absolute path",
        "'C:/win': absolute path",
        "'..\\\\..\\\\x': '..' leads out of the bundle folder",
        "'ok/a.txt': duplicate member",
        "'ok/link': symbolic link",
    ]


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        pass


def _run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k.lower() not in ("http_proxy", "https_proxy", "all_proxy")}
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def test_pack_serve_download_and_run_as_installed(tmp_path, bundle):
    import nibabel as nib
    from monai.bundle import run
    from PIL import Image

    # 1. pack with the real CLI
    dist = tmp_path / "dist"
    proc = _run(
        [sys.executable, "-m", "monai_lexu.share", "pack", str(bundle), "--out", str(dist)]
        + ["--config", "configs/cpu_small.json", "--set", "features=[8,16,32,64]"],
        cwd=tmp_path,
    )
    zip_path = dist / "lexu_riga_v0.1.0.zip"
    digest, sha256 = md5sum(zip_path), sha256sum(zip_path)
    assert str(zip_path) in proc.stdout and digest in proc.stdout and f"size {zip_path.stat().st_size}" in proc.stdout
    assert (
        f"install (publish the sha256 with the zip): python -m monai_lexu.share install {zip_path.name} " in proc.stdout
    )
    assert f"--sha256 {sha256} --bundle_dir <dir>" in proc.stdout

    # 2. serve it on 127.0.0.1; install it as documented (sha256 verified first), and with MONAI's download CLI
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(dist)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    installed, by_monai = tmp_path / "installed", tmp_path / "by_monai"
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/{zip_path.name}"
        _run(
            [sys.executable, "-m", "monai_lexu.share", "install", url, "--allow-url", "--sha256", sha256]
            + ["--bundle_dir", str(installed)],
            cwd=tmp_path,
        )
        _run(
            [sys.executable, "-m", "monai.bundle", "download", "--name", "lexu_riga", "--version", "0.1.0"]
            + ["--url", url, "--bundle_dir", str(by_monai)],
            cwd=tmp_path,
        )
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
    root = installed / "lexu_riga"
    files = sorted(p.relative_to(installed).as_posix() for p in root.rglob("*") if p.is_file())
    assert files == EXPECTED and sorted(p.name for p in installed.iterdir()) == ["lexu_riga"]
    assert (
        sorted(p.relative_to(by_monai).as_posix() for p in (by_monai / "lexu_riga").rglob("*") if p.is_file()) == files
    )
    assert md5sum(by_monai / "lexu_riga.zip") == digest
    assert (root / "models" / "model.pt").read_bytes() == (bundle / "models" / "model.pt").read_bytes()

    # 3. inference as installed, from a directory outside the repository
    images = tmp_path / "images"
    images.mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        Image.fromarray(rng.integers(0, 256, (64, 48, 3), dtype=np.uint8)).save(images / f"fundus_{i}.png")
    work = tmp_path / "work"
    work.mkdir()
    configs = f"['{root}/configs/inference.json','{root}/configs/cpu_small.json']"
    out = tmp_path / "out"
    _run(
        [sys.executable, "-m", "monai.bundle", "run", "--config_file", configs, "--bundle_root", str(root)]
        + ["--input_glob", f"{images}/*.png", "--output_dir", str(out), "--features", "[8,16,32,64]"],
        cwd=work,
    )
    # the same inference with the source bundle, in process: the installed bundle must give the same maps
    ref = tmp_path / "ref"
    run(
        config_file=[str(bundle / "configs" / "inference.json"), str(bundle / "configs" / "cpu_small.json")],
        bundle_root=str(bundle),
        input_glob=f"{images}/*.png",
        output_dir=str(ref),
        features=FEATURES,
    )
    for i in range(2):
        prob = nib.load(out / f"fundus_{i}_prob.nii.gz").get_fdata()
        unc = nib.load(out / f"fundus_{i}_unc.nii.gz").get_fdata()
        # PIL gives (W, H) = (48, 64); 2 structures channel-last
        assert prob.shape[:2] == (48, 64) and prob.shape[-1] == 2 and unc.shape == prob.shape
        assert 0.0 <= prob.min() and prob.max() <= 1.0 and 0.0 <= unc.min() and unc.max() <= 1.0 / 3.0 + 1e-6
        assert unc.max() > 0.0  # the untrained heads disagree somewhere
        np.testing.assert_allclose(prob, nib.load(ref / f"fundus_{i}_prob.nii.gz").get_fdata(), atol=1e-6)
        np.testing.assert_allclose(unc, nib.load(ref / f"fundus_{i}_unc.nii.gz").get_fdata(), atol=1e-6)
