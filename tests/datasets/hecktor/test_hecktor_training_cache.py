"""The HECKTOR training cache holds the rater masks as uint8 and the batches are the same as with float32 masks (issue
11, item 6): bundles/_base/hecktor/configs/train.json loads the raters as uint8 (LoadRatersd dtype), fuses the crop
foreground as bool (not uint8: MONAI's map_binary_to_indices takes ``~`` of its ``any``, bitwise on uint8), casts to
float32 per patch (EnsureTyped after the random crop) and computes the validation soft label / rater variance after
the cache (monai_lexu.transforms.AfterCache)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

BUNDLE = Path(__file__).resolve().parents[3] / "bundles" / "lexu_hecktor" / "configs"
FLOAT_MASKS = {  # the configuration before issue 11: masks float32 from loading on, validation statistics cached
    "load#1#dtype": "$torch.float32",
    "train#random_transforms#0#dtype": "$torch.float32",
    "validate#transforms": [
        {"_target_": "monai_lexu.transforms.RaterStatsd", "keys": "raters"},
        {
            "_target_": "EnsureTyped",
            "keys": ["image", "raters", "soft_label", "rater_var"],
            "dtype": "$torch.float32",
        },
    ],
}


def _parser(tmp: Path, **overrides):
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config([str(BUNDLE / "train.json"), str(BUNDLE / "cpu_small.json")])
    parser.update(
        {
            "dataset_dir": str(tmp / "data"),
            "synthetic_data": {"num_cases": 3, "seed": 0},
            "ckpt_dir": str(tmp / "models"),
            "output_dir": str(tmp / "eval"),
            "num_workers": 0,
            "make_synthetic": True,
            **overrides,
        }
    )
    return parser


def _nbytes(item: dict) -> int:
    return sum(v.numel() * v.element_size() for v in item.values() if isinstance(v, torch.Tensor))


@pytest.fixture(scope="module")
def data_tmp(tmp_path_factory):
    """One folder for the module: the synthetic set is generated and converted once."""
    return tmp_path_factory.mktemp("hecktor_cache")


@pytest.fixture(scope="module")
def datasets(data_tmp):
    tmp = data_tmp
    return {
        name: {
            split: _parser(tmp, **over).get_parsed_content(f"{split}#dataset", instantiate=True)
            for split in ("train", "validate")
        }
        for name, over in (("uint8", {}), ("float32", FLOAT_MASKS))
    }


def test_training_cache_holds_uint8_masks_and_gives_the_same_batches(datasets):
    new, old = datasets["uint8"]["train"], datasets["float32"]["train"]
    cached = new._cache[0]
    assert cached["raters"].dtype == torch.uint8 and cached["foreground"].dtype == torch.bool
    assert cached["image"].dtype == torch.float32
    assert old._cache[0]["raters"].dtype == torch.float32
    assert _nbytes(cached) < 0.6 * _nbytes(old._cache[0])
    for index in range(len(new)):
        for ds in (new, old):
            ds.transform.set_random_state(seed=index)
        a, b = new[index], old[index]  # num_samples patches per case
        assert len(a) == len(b) > 1
        for pa, pb in zip(a, b):
            for key in ("image", "raters", "soft_label", "rater_var"):
                assert pa[key].dtype == pb[key].dtype == torch.float32, key
                torch.testing.assert_close(torch.as_tensor(pa[key]), torch.as_tensor(pb[key]), rtol=0, atol=0)


def test_validation_cache_holds_uint8_masks_and_computes_the_targets_per_access(datasets):
    new, old = datasets["uint8"]["validate"], datasets["float32"]["validate"]
    cached = new._cache[0]
    assert cached["raters"].dtype == torch.uint8 and "soft_label" not in cached and "rater_var" not in cached
    assert "soft_label" in old._cache[0]
    assert _nbytes(cached) < 0.6 * _nbytes(old._cache[0])
    for index in range(len(new)):
        a, b = new[index], old[index]
        for key in ("image", "raters", "soft_label", "rater_var"):
            assert a[key].dtype == b[key].dtype == torch.float32, key
            torch.testing.assert_close(torch.as_tensor(a[key]), torch.as_tensor(b[key]), rtol=0, atol=0)


def test_after_cache_is_where_caching_stops():
    from monai.data import CacheDataset
    from monai.transforms import Compose, Lambdad

    from monai_lexu.transforms import AfterCache

    calls = []

    def count(x):
        calls.append(x)
        return x * 2

    ds = CacheDataset(
        [{"x": 1}, {"x": 2}],
        Compose([Lambdad("x", lambda x: x + 1), AfterCache([Lambdad("x", count)])]),
        progress=False,
    )
    assert [c["x"] for c in ds._cache] == [2, 3] and calls == []  # the cache holds the part before AfterCache
    assert [ds[i]["x"] for i in range(2)] == [4, 6] and calls == [2, 3]  # run on every access
    assert ds[0]["x"] == 4 and len(calls) == 3
    assert AfterCache(Lambdad("x", lambda x: -x))({"x": 3}) == {"x": -3}  # a single transform works too


def test_thread_loader_and_persistent_dataset_options(data_tmp):
    """The documented overrides (bundles/README.md, GPU habits): ThreadDataLoader for the loader, PersistentDataset
    (disk cache) for the dataset; the first training batch equals the default CacheDataset + DataLoader's."""
    from monai.data import PersistentDataset, ThreadDataLoader

    tmp = data_tmp
    persistent = {
        "_target_": "PersistentDataset",
        "data": "@train#data",
        "transform": "@train#preprocessing",
        "cache_dir": str(tmp / "persistent"),
    }
    batches = []
    for over in ({}, {"train#dataloader#_target_": "ThreadDataLoader", "train#dataset": persistent}):
        parser = _parser(tmp, **over, **{"train#dataloader#shuffle": False})
        loader = parser.get_parsed_content("train#dataloader")
        loader.dataset.transform.set_random_state(seed=0)
        batches.append((loader, next(iter(loader))))
    (default, a), (other, b) = batches
    assert isinstance(other, ThreadDataLoader) and isinstance(other.dataset, PersistentDataset)
    assert any((tmp / "persistent").iterdir())  # the deterministic part was cached on disk
    for key in ("image", "raters", "soft_label", "rater_var"):
        torch.testing.assert_close(torch.as_tensor(a[key]), torch.as_tensor(b[key]), rtol=0, atol=0)
