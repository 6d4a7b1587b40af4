"""Tests for monai_lexu.datasets.hecktor.recipe: the one preprocessing recipe, recorded at conversion, read by
training and inference; a spacing change at the single source makes conversion AND inference follow."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from monai_lexu.datasets.hecktor import recipe as recipe_module
from monai_lexu.datasets.hecktor.recipe import (
    DEFAULT_RECIPE,
    RECIPE_FILE,
    SYNTHETIC_RECIPE,
    HecktorRecipe,
    RecipeMismatchError,
    default_recipe,
    load_model_recipe,
    load_recipe,
    recipe_path,
    write_recipe,
)

REPO = Path(__file__).resolve().parents[3]
INFERENCE = REPO / "bundles" / "lexu_hecktor" / "configs" / "inference.json"
TRAIN = REPO / "bundles" / "lexu_hecktor" / "configs" / "train.json"


def test_defaults_validation_and_normalisation():
    assert DEFAULT_RECIPE.spacing == (1.0, 1.0, 1.0) and DEFAULT_RECIPE.box_mm == (200.0, 200.0, 310.0)
    assert DEFAULT_RECIPE.ct_window == (-160.0, 240.0) and DEFAULT_RECIPE.pet_mode == "sigmoid"
    assert SYNTHETIC_RECIPE.spacing == (2.0, 2.0, 2.0) and SYNTHETIC_RECIPE.box_mm == (128.0, 128.0, 128.0)
    assert SYNTHETIC_RECIPE.differences(DEFAULT_RECIPE).keys() == {"spacing", "box_mm"}
    assert default_recipe() is DEFAULT_RECIPE and default_recipe(synthetic=True) is SYNTHETIC_RECIPE
    r = HecktorRecipe(spacing=[1, 1, 2], box_mm=100, pet_mode="SUV")  # lists, scalars and case are normalised
    assert r.spacing == (1.0, 1.0, 2.0) and r.box_mm == (100.0, 100.0, 100.0) and r.pet_mode == "suv"
    assert r.replace(spacing=None) == r and r.replace(spacing=(2, 2, 2)).spacing == (2.0, 2.0, 2.0)
    with pytest.raises(AttributeError):
        r.spacing = (3.0, 3.0, 3.0)  # frozen
    for bad, match in (
        ({"spacing": (1, 0, 1)}, "positive"),
        ({"box_mm": (1, 2)}, "3 numbers"),
        ({"ct_window": (10, -10)}, "lo < hi"),
        ({"pet_mode": "zscore"}, "pet_mode"),
        ({"suv_max": 0}, "suv_max"),
        ({"spacing": ("a", 1, 1)}, "3 numbers"),
    ):
        with pytest.raises(ValueError, match=match):
            HecktorRecipe(**bad)


def test_write_and_load_round_trip_and_errors(tmp_path):
    path = write_recipe(tmp_path, SYNTHETIC_RECIPE)
    assert path == tmp_path / RECIPE_FILE
    stored = json.loads(path.read_text())
    assert stored["recipe"]["spacing"] == [2.0, 2.0, 2.0] and stored["dataset"] == "hecktor"
    (tmp_path / "datalist.json").write_text("{}")
    for where in (tmp_path, path, tmp_path / "datalist.json"):
        assert recipe_path(where) == path and load_recipe(where) == SYNTHETIC_RECIPE
    assert load_recipe(tmp_path, spacing=None, box_mm=None) == SYNTHETIC_RECIPE  # None: not asked
    assert load_recipe(tmp_path, spacing=[2, 2, 2]) == SYNTHETIC_RECIPE  # asked and equal
    assert load_recipe(tmp_path, expected=SYNTHETIC_RECIPE.to_dict()) == SYNTHETIC_RECIPE

    with pytest.raises(RecipeMismatchError) as err:
        load_recipe(tmp_path, spacing=(1, 1, 1), box_mm=(128, 128, 128))
    message = str(err.value)
    assert str(path) in message and "spacing: recorded (2, 2, 2), asked (1, 1, 1)" in message
    assert "box_mm" not in message
    with pytest.raises(RecipeMismatchError, match="box_mm: recorded"):
        load_recipe(tmp_path, expected=DEFAULT_RECIPE)
    with pytest.raises(ValueError, match="unknown setting"):
        load_recipe(tmp_path, voxel_size=(1, 1, 1))
    with pytest.raises(FileNotFoundError, match="no HECKTOR preprocessing recipe"):
        load_recipe(tmp_path / "elsewhere")
    stored["recipe"].pop("ct_window")
    path.write_text(json.dumps(stored))
    with pytest.raises(ValueError, match=r"preprocessing\.json: recipe settings missing \['ct_window'\]"):
        load_recipe(tmp_path)
    path.write_text("not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_recipe(tmp_path)


def _spacing_of_preprocessing(preprocessing) -> tuple[float, ...]:
    from monai.transforms import Spacingd

    (spacing,) = [t for t in preprocessing.transforms if isinstance(t, Spacingd)]
    return tuple(float(v) for v in spacing.spacing_transform.pixdim)


def test_a_spacing_change_at_the_single_source_makes_conversion_and_inference_follow(tmp_path, monkeypatch):
    """Change the synthetic set's spacing in recipe.py only: the conversion, the recorded recipe, the training
    normalisation and the inference preprocessing of the bundle all use it; asking inference for the old spacing is
    an explicit error naming the recorded file."""
    from monai.bundle import ConfigParser

    from monai_lexu.datasets.hecktor.convert import ensure_hecktor_dataset

    changed = SYNTHETIC_RECIPE.replace(spacing=(3.0, 3.0, 4.0), ct_window=(-100.0, 200.0))
    monkeypatch.setattr(recipe_module, "SYNTHETIC_RECIPE", changed)
    data = tmp_path / "data"

    # conversion (the bundle's train.json calls ensure_hecktor_dataset on an empty folder)
    datalist = ensure_hecktor_dataset(data, {"num_cases": 2, "seed": 4}, folds=2)
    assert load_recipe(data) == changed
    case = json.loads(datalist.read_text())["training"][0]
    for rel in [*case["image"], *case["raters"]]:
        np.testing.assert_allclose(nib.load(data / rel).header.get_zooms()[:3], (3.0, 3.0, 4.0))

    # inference: the bundle's inference.json builds its preprocessing from the recipe recorded with the data
    parser = ConfigParser()
    parser.read_config(str(INFERENCE))
    parser.update({"bundle_root": str(REPO / "bundles" / "lexu_hecktor"), "dataset_dir": str(data)})
    parser.update({"input_dir": str(data / "raw" / "imagesTr"), "device": "$torch.device('cpu')"})
    assert parser.get_parsed_content("recipe") == changed
    preprocessing = parser.get_parsed_content("preprocessing")
    assert _spacing_of_preprocessing(preprocessing) == (3.0, 3.0, 4.0)
    raw_case = parser.get_parsed_content("datalist")[0]
    out = preprocessing(raw_case)
    np.testing.assert_allclose(out["image"].pixdim.numpy(), (3.0, 3.0, 4.0), atol=1e-5)
    assert tuple(out["image"].shape[1:]) == tuple(round(b / s) for b, s in zip(changed.box_mm, (3.0, 3.0, 4.0)))
    ct = out["ct"][0]
    inside = (ct > -100.0) & (ct < 200.0)
    np.testing.assert_allclose(out["image"][0][inside].numpy(), ((ct[inside] + 100.0) / 300.0).numpy(), atol=1e-5)

    # training reads the same recipe for its CT / PET normalisation (one transform, HecktorNormalized)
    train = ConfigParser()
    train.read_config(str(TRAIN))
    train.update({"bundle_root": str(REPO / "bundles" / "lexu_hecktor"), "dataset_dir": str(data)})
    assert train.get_parsed_content("recipe") == changed

    # inference asked for another spacing than the data were converted with: an explicit error naming the file
    parser = ConfigParser()
    parser.read_config(str(INFERENCE))
    parser.update({"bundle_root": str(REPO / "bundles" / "lexu_hecktor"), "dataset_dir": str(data)})
    parser.update({"spacing": [1.0, 1.0, 1.0]})
    with pytest.raises(RuntimeError) as err:  # MONAI's config wraps the error of an expression
        parser.get_parsed_content("recipe")
    cause = err.value.__cause__
    assert isinstance(cause, RecipeMismatchError) and "spacing: recorded (3, 3, 4), asked (1, 1, 1)" in str(cause)
    assert str(data / RECIPE_FILE) in str(cause)


def test_real_data_default_recipe_follows_too(tmp_path, monkeypatch):
    """The real-data default (DEFAULT_RECIPE) drives conversion of a layout-A folder when no recipe is given."""
    from monai_lexu.datasets.hecktor.convert import convert_hecktor
    from monai_lexu.datasets.hecktor.synthetic import write_synthetic_hecktor

    changed = DEFAULT_RECIPE.replace(spacing=(4.0, 4.0, 4.0), box_mm=(96.0, 96.0, 128.0))
    monkeypatch.setattr(recipe_module, "DEFAULT_RECIPE", changed)
    raw = write_synthetic_hecktor(tmp_path / "raw", num_cases=1, seed=0)
    datalist = convert_hecktor(raw, tmp_path / "out", folds=1)
    assert load_recipe(datalist) == changed
    ct = json.loads(datalist.read_text())["training"][0]["image"][0]
    assert nib.load(tmp_path / "out" / ct).shape == (24, 24, 32)


def test_model_recipe_travels_with_the_weights(tmp_path):
    """Inference reads the recipe written next to the weights first, the data set's only as a fallback."""
    models, data = tmp_path / "models", tmp_path / "data"
    write_recipe(data, SYNTHETIC_RECIPE)
    assert load_model_recipe(models, data) == SYNTHETIC_RECIPE  # weights without a recorded recipe: the data's
    write_recipe(models, DEFAULT_RECIPE)
    assert load_model_recipe(models, data) == DEFAULT_RECIPE  # the model's own recipe wins
    assert load_model_recipe(models) == DEFAULT_RECIPE
    with pytest.raises(RecipeMismatchError, match="models/preprocessing.json"):
        load_model_recipe(models, data, spacing=(2, 2, 2))


def test_model_recipe_missing_names_both_files(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        load_model_recipe(tmp_path / "models", tmp_path / "data")
    assert str(tmp_path / "models" / RECIPE_FILE) in str(info.value)
    assert str(tmp_path / "data" / RECIPE_FILE) in str(info.value)
