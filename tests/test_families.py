"""Bundle families: the committed bundles equal base + delta, deltas stay small, bad deltas are refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from monai_lexu.families import (
    PLACEHOLDER,
    apply_delta,
    check_family_bundles,
    delta_line_count,
    find_family_bundles,
    main,
    render_family_bundle,
    write_family_bundle,
)

BUNDLES = Path(__file__).resolve().parents[1] / "bundles"


def test_committed_bundles_equal_base_plus_delta():
    assert len(find_family_bundles(BUNDLES)) == 8
    assert check_family_bundles(BUNDLES) == []


@pytest.mark.parametrize(
    "name",
    [
        "layer_ensemble_riga",
        "deep_ensemble_riga",
        "layer_ensemble_hecktor",
        "deep_ensemble_hecktor",
        "calibrated_ensemble_riga",
        "calibrated_ensemble_hecktor",
    ],
)
def test_a_method_on_an_existing_data_set_costs_under_150_lines(name):
    assert delta_line_count(BUNDLES / name) < 150


def test_bundle_name_is_written_only_by_the_generator():
    for bundle in find_family_bundles(BUNDLES):
        assert bundle.name not in (bundle / "family.json").read_text()
        for config in ("train.json", "inference.json", "train_slices.json", "evaluate_slices.json"):
            if config.endswith("slices.json") and not (bundle / "configs" / config).is_file():
                continue
            text = (bundle / "configs" / config).read_text()
            if config == "evaluate_slices.json":  # merged after train_slices.json: names it by @bundle_name only
                assert bundle.name not in text
                continue
            assert text.count(bundle.name) == 1, (bundle.name, config)
            assert json.loads(text)["bundle_name"] == bundle.name


def test_siblings_differ_only_by_their_delta():
    """LE and DE on RIGA: every train.json id outside the delta's ids is identical to LEXU's base-derived value."""
    lexu = json.loads((BUNDLES / "lexu_riga" / "configs" / "train.json").read_text())
    le = json.loads((BUNDLES / "layer_ensemble_riga" / "configs" / "train.json").read_text())
    delta_keys = {"bundle_name", "heads", "num_kept_heads", "skip_first", "beta", "rater_sampling", "loss"}
    assert {k for k in lexu.keys() | le.keys() if lexu.get(k) != le.get(k)} <= delta_keys


def test_apply_delta_known_answer():
    base = {"a": 1, "network_def": {"x": [1, 2, 3]}, "run": ["go"]}
    out = apply_delta(base, {"new": 5, "network_def::x#1": 20, "run#0": "stop"}, remove=["a"])
    assert out == {"new": 5, "network_def": {"x": [1, 20, 3]}, "run": ["stop"]}
    assert list(out) == ["new", "network_def", "run"]  # new top-level keys go before network_def
    assert base == {"a": 1, "network_def": {"x": [1, 2, 3]}, "run": ["go"]}  # the base is not modified


@pytest.mark.parametrize(
    "overrides, remove",
    [({"missing#x": 1}, ()), ({"run#5": 1}, ()), ({}, ["nope"]), ({}, ["run#0"])],
    ids=["unknown-parent", "index-out-of-range", "remove-unknown", "remove-list-item"],
)
def test_apply_delta_refuses_ids_not_in_the_base(overrides, remove):
    with pytest.raises(KeyError, match="delta"):
        apply_delta({"run": ["go"]}, overrides, remove)


def _family(tmp_path: Path, delta: dict, base_train: dict | None = None) -> Path:
    base = tmp_path / "bundles" / "_base" / "toy" / "configs"
    base.mkdir(parents=True)
    (base / "train.json").write_text(json.dumps(base_train or {"bundle_name": PLACEHOLDER, "epochs": 2}))
    (base / "logging.conf").write_text("[loggers]\n")
    bundle = tmp_path / "bundles" / "toy_method"
    bundle.mkdir()
    (bundle / "family.json").write_text(json.dumps(delta))
    return bundle


def test_write_then_check_roundtrip(tmp_path):
    bundle = _family(tmp_path, {"base": "toy", "configs": {"train.json": {"epochs": 5}}})
    assert len(write_family_bundle(bundle)) == 2
    assert json.loads((bundle / "configs" / "train.json").read_text()) == {"bundle_name": "toy_method", "epochs": 5}
    assert (bundle / "configs" / "train.json").read_text().endswith("}\n")
    assert write_family_bundle(bundle) == []  # nothing changed
    assert check_family_bundles(bundle.parent) == []
    (bundle / "configs" / "train.json").write_text("{}\n")
    assert check_family_bundles(bundle.parent) == [
        f"{bundle / 'configs' / 'train.json'}: differs from _base/ + family.json"
    ]
    assert main(["check", "--bundles", str(bundle.parent)]) == 1
    assert main(["write", "--bundles", str(bundle.parent)]) == 0
    assert main(["check", "--bundles", str(bundle.parent)]) == 0


@pytest.mark.parametrize(
    "delta, message",
    [
        ({"base": "other"}, "base 'other' not found"),
        ({"configs": {}}, "needs 'base'"),
        ({"base": "toy", "extra": 1}, "unknown"),
        ({"base": "toy", "configs": {"evaluate.json": {"a": 1}}}, "not a config of base"),
    ],
    ids=["missing-base", "no-base-key", "unknown-key", "unknown-config"],
)
def test_malformed_delta_is_refused_naming_the_file(tmp_path, delta, message):
    bundle = _family(tmp_path, delta)
    with pytest.raises(ValueError, match=message) as info:
        render_family_bundle(bundle)
    assert "family.json" in str(info.value)


def test_placeholder_left_unset_is_refused(tmp_path):
    bundle = _family(tmp_path, {"base": "toy"}, base_train={"bundle_name": PLACEHOLDER, "name": PLACEHOLDER})
    with pytest.raises(ValueError, match="does not set"):
        render_family_bundle(bundle)
    assert not (bundle / "configs").exists()  # nothing half-written


def test_unreadable_delta_names_the_file(tmp_path):
    bundle = _family(tmp_path, {"base": "toy"})
    (bundle / "family.json").write_text("{not json")
    with pytest.raises(ValueError, match="family.json: cannot read JSON"):
        render_family_bundle(bundle)


def test_optional_base_files_go_only_to_the_bundles_that_list_them(tmp_path):
    """``optional/configs/<file>`` of a base: written for a delta listing it, with only its own section of the delta
    (not ``"*"``) and the bundle name; a sibling that does not list it does not get it."""
    bundle = _family(
        tmp_path,
        {
            "base": "toy",
            "optional": ["slices.json"],
            "configs": {"*": {"heads": "b"}, "slices.json": {"spatial": 3}},
        },
        base_train={"bundle_name": PLACEHOLDER, "heads": "a"},
    )
    optional = tmp_path / "bundles" / "_base" / "toy" / "optional" / "configs"
    optional.mkdir(parents=True)
    (optional / "slices.json").write_text(json.dumps({"bundle_name": PLACEHOLDER, "spatial": 2, "heads": "a"}))
    files = render_family_bundle(bundle)
    assert sorted(files) == ["configs/logging.conf", "configs/slices.json", "configs/train.json"]
    assert json.loads(files["configs/slices.json"]) == {"bundle_name": "toy_method", "spatial": 3, "heads": "a"}
    assert json.loads(files["configs/train.json"]) == {"bundle_name": "toy_method", "heads": "b"}
    sibling = tmp_path / "bundles" / "other_method"
    sibling.mkdir()
    (sibling / "family.json").write_text(json.dumps({"base": "toy", "configs": {"*": {"heads": "c"}}}))
    assert sorted(render_family_bundle(sibling)) == ["configs/logging.conf", "configs/train.json"]
    (sibling / "family.json").write_text(json.dumps({"base": "toy", "configs": {"slices.json": {"spatial": 1}}}))
    with pytest.raises(ValueError, match="not a config of base 'toy' nor an optional one"):
        render_family_bundle(sibling)  # overriding an optional file it does not take


def test_unknown_optional_file_is_refused(tmp_path):
    bundle = _family(tmp_path, {"base": "toy", "optional": ["slices.json"]})
    with pytest.raises(ValueError, match="optional 'slices.json' is not in") as info:
        render_family_bundle(bundle)
    assert "family.json" in str(info.value)


def test_hecktor_slice_protocol_is_optional():
    """LEXU, LE and DE on HECKTOR take the 2D slice configs from the base; the calibrated ensemble does not."""
    for name in ("lexu_hecktor", "layer_ensemble_hecktor", "deep_ensemble_hecktor"):
        assert "configs/train_slices.json" in render_family_bundle(BUNDLES / name)
    assert not (BUNDLES / "calibrated_ensemble_hecktor" / "configs" / "train_slices.json").exists()
    assert "configs/train_slices.json" not in render_family_bundle(BUNDLES / "calibrated_ensemble_hecktor")
