"""HECKTOR training cache: MiB per cached case before and after caching the rater masks compactly (issue 11, item 6).

Builds the ``train`` and ``validate`` datasets of ``bundles/lexu_hecktor/configs/train.json`` (``CacheDataset``,
the bundle's own transforms) over ONE converted real-size case (the output of ``bench_hecktor_convert.py``: 200 x 200
x 310 voxels at 1 mm, 3 raters, 2 structures) and sums the bytes of every tensor the cache holds for it. "before" is
the configuration before issue 11 (rater masks and crop foreground float32 from loading on, validation soft label
and rater variance cached), "after" the current one (masks uint8, foreground bool, float32 targets computed per
patch / per access: ``monai_lexu.transforms.AfterCache``). It also times, in CPU seconds, what moved out of the
cache: one access of the validation item (statistics of the whole volume) and one training access (crop + cast).

Example::

    python benchmarks/bench_hecktor_convert.py --rounds 1 --threads 1 --methods box   # once: the converted case
    nice -n 10 python benchmarks/bench_training_cache.py           # -> benchmarks/results/training_cache.json
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
BUNDLE = ROOT / "bundles" / "lexu_hecktor" / "configs"
BEFORE = {  # the configuration before issue 11 (see tests/datasets/hecktor/test_hecktor_training_cache.py)
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


def _mib(item: dict) -> dict[str, float]:
    sizes = {k: v.numel() * v.element_size() / 2**20 for k, v in item.items() if isinstance(v, torch.Tensor)}
    sizes["total"] = sum(sizes.values())
    return {k: round(v, 1) for k, v in sizes.items()}


def measure(dataset_dir: Path, overrides: dict) -> dict:
    from monai.bundle import ConfigParser
    from monai.data import CacheDataset

    from monai_lexu.data import load_multirater_datalist

    parser = ConfigParser()
    parser.read_config([str(BUNDLE / "train.json")])
    parser.update({"dataset_dir": str(dataset_dir), "num_workers": 0, "make_synthetic": False, **overrides})
    entries = load_multirater_datalist(parser.get_parsed_content("datalist"), "training")[:1]
    out = {"case": entries[0]["id"], "raters": len(entries[0]["raters"])}
    for split in ("train", "validate"):
        ds = CacheDataset(entries, parser.get_parsed_content(f"{split}#preprocessing"), cache_rate=1.0, progress=False)
        out[f"{split}_cache_mib"] = _mib(ds._cache[0])
        out[f"{split}_cache_dtypes"] = {k: str(v.dtype) for k, v in ds._cache[0].items() if isinstance(v, torch.Tensor)}
        ds.transform.set_random_state(seed=0)
        cpu = time.process_time()
        ds[0]
        out[f"{split}_access_cpu_s"] = round(time.process_time() - cpu, 3)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--dataset_dir", type=Path, default=ROOT / "benchmarks" / "work" / "hecktor_realsize" / "out_box"
    )
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "results" / "training_cache.json")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    result = {"dataset_dir": str(args.dataset_dir), "threads": args.threads, "loadavg_before": os.getloadavg()}
    result["before"] = measure(args.dataset_dir, BEFORE)
    result["after"] = measure(args.dataset_dir, {})
    result["loadavg_after"] = os.getloadavg()
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
