"""The evaluation's metric suite on 1000 images of 256^2 x 2 structures, before and after issue 11 (item 4).

Each measurement runs in its own subprocess with ONE torch thread, on a given source tree: "after" is this checkout,
"before" a copy of the commit given by ``--before`` (``git archive``), so both run the same script side by side (the
recorded results: ``--before b1f3812``, the commit before item 4); runs alternate (before, after, after, before, ...)
and the 1-minute load is recorded around each. Timed (``time.process_time``, generation of the maps excluded):

* ``add``: ``UncertaintyReport.add`` for every image (100 distinct images, each given 10 times; all default
  columns: SR, DC, NCC, band/core, soft Dice, NLL, WME, ME, ECE), then ``summary()`` (SR, DC over the 1000
  images; the import of ``dcor`` if the tree does it);
* ``batch B``: every report metric called directly on B images per call (B = 1, 10, 50), CPU per image.

The reported values (per structure: the mean over images of each per-image metric, SR, DC, pooled ECE) of the two
trees are compared: max relative difference per metric.

Example::

    nice -n 10 python benchmarks/bench_metrics.py            # -> benchmarks/results/metrics_suite.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _child import report, run_child  # benchmarks/_child.py (this script's folder is on sys.path)

ROOT = Path(__file__).resolve().parents[1]
N_IMAGES, DISTINCT, SHAPE, STRUCTURES = 1000, 100, (256, 256), ("disc", "cup")


def _images(n: int, seed: int = 0):
    """n images: 3 raters whose masks are discs of different radii (a disagreement band), a probability close to
    the soft label with noise, an uncertainty map growing in the band."""
    import torch

    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(SHAPE[0]), torch.arange(SHAPE[1]), indexing="ij")
    out = []
    for _ in range(n):
        cy, cx = 128 + int(torch.randint(-20, 21, (1,), generator=g)), 128 + int(
            torch.randint(-20, 21, (1,), generator=g)
        )
        d = ((yy - cy) ** 2 + (xx - cx) ** 2).float().sqrt()
        radii = torch.tensor([[60.0, 64.0, 70.0], [25.0, 28.0, 33.0]]) * (0.8 + 0.4 * torch.rand(1, generator=g))
        raters = (d[None, None] <= radii[:, :, None, None]).float().transpose(0, 1)  # (R=3, L=2, H, W)
        soft, var = raters.mean(0), raters.var(0)
        noise = 0.15 * torch.rand(2, *SHAPE, generator=g)
        prob = (0.85 * soft + noise).clamp(0, 1)
        unc = (var * 0.7 + 0.05 * noise).clamp(0, 1)
        out.append((prob, unc, soft, var))
    return out


def run_one(batches: list[int]) -> dict:
    import torch

    torch.set_num_threads(1)
    cpu0 = time.process_time()
    from monai_lexu.handlers.uncertainty_report import UncertaintyReport
    from monai_lexu.metrics.registry import REPORT_METRICS

    import_cpu = time.process_time() - cpu0
    images = _images(DISTINCT)  # cycled: 1000 images of 2 MB each would hold 2 GB for nothing
    report = UncertaintyReport(list(STRUCTURES), tempfile.mkdtemp())
    cpu = time.process_time()
    for i in range(N_IMAGES):
        report.add(*images[i % DISTINCT], case_id=f"case{i:04d}")
    add_cpu = time.process_time() - cpu
    cpu = time.process_time()
    summary = report.summary()
    summary_cpu = time.process_time() - cpu
    means, _ = summary.statistics()
    result = {
        "import_cpu_s": round(import_cpu, 2),
        "add_cpu_s": round(add_cpu, 3),
        "summary_cpu_s": round(summary_cpu, 3),
        "dcor_imported": "dcor" in sys.modules,
        "values": means,
        "batch_ms_per_image": {},
    }
    stacked = [torch.stack([im[k] for im in images[:50]]) for k in range(4)]
    inputs = dict(zip(("prob", "unc", "soft_label", "rater_var"), stacked))
    from monai_lexu.metrics import registry as reg

    derived = getattr(reg, "DERIVED_INPUTS", {})
    if derived:
        from monai_lexu.metrics.entropy import entropy_map

    for b in batches:
        total = 0.0
        for name in report.metrics:
            spec = REPORT_METRICS[name]
            metric = spec.factory({"calibration_bins": 10})
            reps = max(1, 50 // b)
            cpu = time.process_time()
            for r in range(reps):
                part = {k: v[r * b : (r + 1) * b] for k, v in inputs.items()}
                for key, source in derived.items():  # the report derives them once per call, shared
                    if key in spec.inputs:
                        part[key] = entropy_map(part[source])
                metric(*(part[k] for k in spec.inputs))
            total += time.process_time() - cpu
        result["batch_ms_per_image"][str(b)] = round(1000 * total / (reps * b), 3)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", default="HEAD", help="commit of the 'before' tree (the results used b1f3812)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 10, 50])
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "results" / "metrics_suite.json")
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        report(run_one(args.batches))
        return
    before = subprocess.run(
        ["git", "rev-parse", args.before], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    old = Path(tempfile.mkdtemp(prefix="metrics_before_"))
    archive = subprocess.run(["git", "archive", before, "monai_lexu"], cwd=ROOT, capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(old)], input=archive.stdout, check=True)
    trees = {"before": old, "after": ROOT}
    result: dict = {"images": N_IMAGES, "shape": SHAPE, "structures": STRUCTURES, "before_commit": before, "runs": []}
    for r in range(args.rounds):
        for name in (("before", "after") if r % 2 == 0 else ("after", "before")):
            env = dict(os.environ, PYTHONPATH=str(trees[name]))
            cmd = [sys.executable, __file__, "--one", "--batches", *map(str, args.batches)]
            run = run_child(cmd, name, env=env, cwd=tempfile.gettempdir())
            run.update({"tree": name, "round": r})
            result["runs"].append(run)
            print(json.dumps({k: v for k, v in run.items() if k != "values"}), flush=True)
    last = {run["tree"]: run["values"] for run in result["runs"]}
    diffs: dict = {}
    for s, row in last["before"].items():
        for m, v in row.items():
            w = last["after"][s][m]
            if v is None or w is None or v != v or w != w:
                diffs[f"{m}_{s}"] = None if (v is None) == (w is None) and (v != v) == (w != w) else "differs"
            else:
                diffs[f"{m}_{s}"] = abs(w - v) / max(abs(v), 1e-300)
    result["max_relative_difference"] = diffs
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(diffs, indent=2))


if __name__ == "__main__":
    main()
