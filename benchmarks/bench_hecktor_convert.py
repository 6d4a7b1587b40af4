"""HECKTOR conversion of one real-size case: whole-volume resampling vs resampling only the crop box (issue 11, item 5).

The case is built here (``--work``, default ``benchmarks/work/hecktor_realsize``, written once): CT 512 x 512 x 150
int16 (0.977 x 0.977 x 3.0 mm, LPS-like affine as an ITK-written DICOM series), PET 200 x 200 x 150 float32
(4.07 x 4.07 x 3.27 mm, its own origin, covering the CT), 3 rater masks (uint8, GTVp = 1 and GTVn = 2 of three
different radii) on the CT grid: a body cylinder, a head with a hot brain at the top of the PET (where the neck crop
looks for it), a primary tumour and a node. The default recipe (1 mm, box 200 x 200 x 310 mm) resamples the CT grid to
500 x 500 x 448 voxels; the box keeps 12.4 M of its 112 M voxels.

Each run is ``convert_hecktor(raw, out, folds=1, resample=...)`` end to end (checks, resampling, writing the NIfTI
files, the summaries; the imports of torch and MONAI, once per process, are timed apart) in its OWN subprocess, so that
its peak RSS (``VmHWM``) is its own; the subprocess sets the torch thread count explicitly and reports wall time, CPU
time (``time.process_time``, all threads) and the RSS after its imports. Methods alternate (whole, box, box, whole,
...), at 1 and 2 threads; the 1-minute load average is recorded before and after each run. Finally the outputs of the
two methods are compared: max |difference| per image (CT in HU, PET in SUV) and, per rater and structure, the Dice of
the box-path mask against the whole-volume one.

Example::

    nice -n 10 python benchmarks/bench_hecktor_convert.py            # -> benchmarks/results/hecktor_convert.json
    python benchmarks/bench_hecktor_convert.py --threads 1 --rounds 1 --methods box
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time
from pathlib import Path

import numpy as np
from _child import report, run_child  # benchmarks/_child.py (this script's folder is on sys.path)

ROOT = Path(__file__).resolve().parents[1]
CT_SHAPE = (512, 512, 150)
CT_SPACING = (0.977, 0.977, 3.0)
PET_SHAPE = (200, 200, 150)
PET_SPACING = (4.07, 4.07, 3.27)
RATERS = ("rater1", "rater2", "rater3")
CASE = "REAL-001"


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return -1


def _axis(n: int, spacing: float, origin: float, sign: float) -> np.ndarray:
    return (origin + sign * spacing * np.arange(n)).astype(np.float32)


def build_case(raw: Path, seed: int = 0) -> Path:
    """Write the real-size case in layout A (``raw/imagesTr``, ``raw/labelsTr/<rater>``); skipped if present."""
    import nibabel as nib

    done = raw / "imagesTr" / f"{CASE}__CT.nii.gz"
    if done.is_file() and all((raw / "labelsTr" / r / f"{CASE}.nii.gz").is_file() for r in RATERS):
        return raw
    rng = np.random.default_rng(seed)
    (raw / "imagesTr").mkdir(parents=True, exist_ok=True)
    # CT: LPS-like (x, y flipped), centred on the world origin
    ct_aff = np.diag([-CT_SPACING[0], -CT_SPACING[1], CT_SPACING[2], 1.0])
    ct_aff[:3, 3] = [
        CT_SPACING[0] * (CT_SHAPE[0] - 1) / 2,
        CT_SPACING[1] * (CT_SHAPE[1] - 1) / 2,
        -CT_SPACING[2] * (CT_SHAPE[2] - 1) / 2,
    ]
    x = _axis(CT_SHAPE[0], CT_SPACING[0], ct_aff[0, 3], -1)[:, None, None]
    y = _axis(CT_SHAPE[1], CT_SPACING[1], ct_aff[1, 3], -1)[None, :, None]
    z = _axis(CT_SHAPE[2], CT_SPACING[2], ct_aff[2, 3], 1)[None, None, :]
    head_c, tumour_c, node_c = (0.0, 0.0, 150.0), (20.0, -25.0, 10.0), (-45.0, -10.0, -25.0)

    def inside(c: tuple[float, float, float], r: tuple[float, float, float], xs, ys, zs) -> np.ndarray:
        return ((xs - c[0]) / r[0]) ** 2 + ((ys - c[1]) / r[1]) ** 2 + ((zs - c[2]) / r[2]) ** 2 <= 1.0

    def body(xs, ys, zs) -> np.ndarray:
        neck = ((xs / 75.0) ** 2 + (ys / 70.0) ** 2 <= 1.0) & (zs < 110.0)
        return neck | inside(head_c, (80.0, 95.0, 90.0), xs, ys, zs)

    ct = np.full(CT_SHAPE, -1000.0, np.float32)
    ct[np.broadcast_to(body(x, y, z), CT_SHAPE)] = 40.0
    ct[np.broadcast_to(inside(tumour_c, (16.0, 16.0, 16.0), x, y, z), CT_SHAPE)] = 60.0
    ct += rng.standard_normal(CT_SHAPE, dtype=np.float32) * 12.0
    nib.save(nib.Nifti1Image(np.clip(np.rint(ct), -1024, 3071).astype(np.int16), ct_aff), done)
    del ct
    for k, rater in enumerate(RATERS):
        m = np.zeros(CT_SHAPE, np.uint8)
        m[np.broadcast_to(inside(node_c, (7.0 + k, 7.0 + k, 8.0 + k), x, y, z), CT_SHAPE)] = 2
        m[np.broadcast_to(inside(tumour_c, (14.0 + 1.5 * k,) * 3, x, y, z), CT_SHAPE)] = 1
        (raw / "labelsTr" / rater).mkdir(parents=True, exist_ok=True)
        nib.save(nib.Nifti1Image(m, ct_aff), raw / "labelsTr" / rater / f"{CASE}.nii.gz")
    # PET: 4.07 mm in x / y, 3.27 mm in z, larger than the CT in every direction
    pet_aff = np.diag([-PET_SPACING[0], -PET_SPACING[1], PET_SPACING[2], 1.0])
    pet_aff[:3, 3] = [
        PET_SPACING[0] * (PET_SHAPE[0] - 1) / 2 + 1.3,
        PET_SPACING[1] * (PET_SHAPE[1] - 1) / 2 - 0.7,
        -PET_SPACING[2] * (PET_SHAPE[2] - 1) / 2 + 4.0,
    ]
    px = _axis(PET_SHAPE[0], PET_SPACING[0], pet_aff[0, 3], -1)[:, None, None]
    py = _axis(PET_SHAPE[1], PET_SPACING[1], pet_aff[1, 3], -1)[None, :, None]
    pz = _axis(PET_SHAPE[2], PET_SPACING[2], pet_aff[2, 3], 1)[None, None, :]
    pet = np.where(body(px, py, pz), 0.8, 0.0).astype(np.float32)
    pet[np.broadcast_to(inside(head_c, (60.0, 75.0, 55.0), px, py, pz), PET_SHAPE)] = 8.0
    pet[np.broadcast_to(inside(tumour_c, (15.0, 15.0, 15.0), px, py, pz), PET_SHAPE)] = 10.0
    pet[np.broadcast_to(inside(node_c, (8.0, 8.0, 8.0), px, py, pz), PET_SHAPE)] = 5.0
    pet *= np.clip(rng.normal(1.0, 0.07, PET_SHAPE), 0.0, None).astype(np.float32)
    nib.save(nib.Nifti1Image(pet, pet_aff), raw / "imagesTr" / f"{CASE}__PT.nii.gz")
    return raw


def run_one(raw: Path, out: Path, method: str, threads: int) -> dict:
    """Convert the case once in this process (called in a subprocess): timings and memory."""
    import torch

    torch.set_num_threads(threads)
    cpu0 = time.process_time()
    import monai_lexu.datasets.hecktor.transforms  # noqa: F401  (MONAI; timed apart: once per process)
    from monai_lexu.datasets.hecktor.convert import convert_hecktor

    import_cpu = time.process_time() - cpu0
    rss_imports = _status_kib("VmRSS")
    wall0, cpu0 = time.perf_counter(), time.process_time()
    convert_hecktor(raw, out, folds=1, overwrite=True, resample=method)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    return {
        "method": method,
        "threads": threads,
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "peak_rss_gib": round(_status_kib("VmHWM") / 2**20, 3),
        "ru_maxrss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 3),
        "rss_after_imports_gib": round(rss_imports / 2**20, 3),
        "import_cpu_s": round(import_cpu, 2),
    }


def compare(box: Path, whole: Path) -> dict:
    """Max |difference| per image and Dice per rater and structure, box path against the whole-volume path."""
    import nibabel as nib

    from monai_lexu.datasets.hecktor.format import HECKTOR_STRUCTURES

    def load(p: Path) -> tuple[np.ndarray, np.ndarray]:
        img = nib.load(p)
        return np.asarray(img.dataobj), np.asarray(img.affine)

    out: dict = {"images": {}, "masks": {}}
    for name in ("CT", "PT"):
        (a, aa), (b, ba) = (load(d / "images" / f"{CASE}__{name}.nii.gz") for d in (box, whole))
        d = np.abs(a.astype(np.float64) - b.astype(np.float64))
        out["images"][name] = {
            "shape": list(a.shape),
            "same_shape": a.shape == b.shape,
            "max_abs_affine_diff": float(np.abs(aa - ba).max()),
            "max_abs_diff": float(d.max()),
            "voxels_differing": int((d > 0).sum()),
            "value_range": [float(b.min()), float(b.max())],
        }
    for rater in RATERS:
        (a, _), (b, _) = (load(d / "labels" / rater / f"{CASE}.nii.gz") for d in (box, whole))
        row = {"voxels_differing": int((a != b).sum())}
        for s, values in HECKTOR_STRUCTURES.items():
            ma, mb = np.isin(a, values), np.isin(b, values)
            total = int(ma.sum() + mb.sum())
            row[f"{s}_dice"] = 1.0 if total == 0 else 2.0 * int((ma & mb).sum()) / total
            row[f"{s}_voxels_whole"] = int(mb.sum())
        out["masks"][rater] = row
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=ROOT / "benchmarks" / "work" / "hecktor_realsize")
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "results" / "hecktor_convert.json")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rounds", type=int, default=2, help="runs of each method per thread count (alternating)")
    parser.add_argument("--methods", nargs="+", default=["whole", "box"], choices=["whole", "box"])
    parser.add_argument("--one", nargs=3, metavar=("METHOD", "THREADS", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    raw = args.work / "raw"
    if args.one:
        method, threads, out = args.one
        report(run_one(raw, Path(out), method, int(threads)))
        return
    t0 = time.perf_counter()
    build_case(raw)
    print(f"case ready in {time.perf_counter() - t0:.0f} s: {raw}", flush=True)
    result: dict = {
        "what": "convert_hecktor of one real-size case (CT 512x512x150, PET 200x200x150, 3 raters), DEFAULT_RECIPE",
        "case": {"ct_shape": CT_SHAPE, "ct_spacing": CT_SPACING, "pet_shape": PET_SHAPE, "pet_spacing": PET_SPACING},
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
        "runs": [],
    }
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    for threads in args.threads:
        for r in range(args.rounds):
            order = args.methods if r % 2 == 0 else list(reversed(args.methods))
            for method in order:
                out = args.work / f"out_{method}"
                cmd = [sys.executable, __file__, "--work", str(args.work), "--one", method, str(threads), str(out)]
                run = run_child(cmd, f"{method}@{threads}t", env=env)
                run["round"] = r
                result["runs"].append(run)
                print(json.dumps(run), flush=True)
                args.output.write_text(json.dumps(result, indent=2) + "\n")
    if {"whole", "box"} <= set(args.methods):
        result["box_vs_whole"] = compare(args.work / "out_box", args.work / "out_whole")
    result["summary"] = {
        f"{m}@{t}t": {
            k: sorted(run[k] for run in result["runs"] if run["method"] == m and run["threads"] == t)
            for k in ("wall_s", "cpu_s", "peak_rss_gib")
        }
        for m in args.methods
        for t in args.threads
    }
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in result if k != "runs"}, indent=2))


if __name__ == "__main__":
    main()
