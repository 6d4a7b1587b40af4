"""Whole-volume 3D inference of the lexu_hecktor network: LEXU (one head per decoder stage) vs the same network with
one head, side by side in one run.

Each model runs in its own child process (so each peak resident memory is its own): a 2-channel PET/CT-sized volume
(default 192x192x160) through ``MultiHeadInferer`` over MONAI's ``SlidingWindowInferer`` (roi 96^3, overlap 0.5,
gaussian; sw_batch_size 4 on a GPU, 1 on CPU, as the bundle): probability and uncertainty per structure for the
whole volume. Reports wall time and peak memory (ru_maxrss on CPU; torch.cuda.max_memory_allocated on a GPU) and
writes JSON. Example::

    python benchmarks/bench_3d_inference.py                      # -> benchmarks/results/inference_3d.json
    python benchmarks/bench_3d_inference.py --shape 128 128 96 --repeats 1
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import platform
import resource
import time
from pathlib import Path


def _run(heads: str, args: dict, queue) -> None:
    import torch
    from monai.inferers import SlidingWindowInferer

    from monai_lexu.inferers import MultiHeadInferer
    from monai_lexu.networks import MultiHeadUNet

    if args["threads"]:
        torch.set_num_threads(args["threads"])
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    net = MultiHeadUNet(3, 2, 2, backbone="plain", heads=heads, features=tuple(args["features"])).to(device).eval()
    window = SlidingWindowInferer(
        roi_size=args["roi"], sw_batch_size=args["sw_batch_size"], overlap=args["overlap"], mode="gaussian"
    )
    inferer = MultiHeadInferer(num_heads=net.num_heads, base_inferer=window)
    volume = torch.rand(1, 2, *args["shape"], generator=torch.Generator().manual_seed(0)).to(device)
    times = []
    for _ in range(args["repeats"]):
        start = time.perf_counter()
        with torch.no_grad(), torch.autocast(device.type, enabled=device.type == "cuda"):
            out = inferer(volume, net)
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    peak = (
        torch.cuda.max_memory_allocated() / 2**20
        if device.type == "cuda"
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    )
    queue.put(
        {
            "heads": heads,
            "num_heads": net.num_heads,
            "parameters": sum(p.numel() for p in net.parameters()),
            "output_shape": list(out.shape),
            "seconds": times,
            "median_seconds": sorted(times)[len(times) // 2],
            "peak_memory_mib": peak,
            "memory_kind": "cuda max_memory_allocated" if device.type == "cuda" else "process peak RSS (ru_maxrss)",
            "device": str(device),
        }
    )


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shape", type=int, nargs=3, default=[192, 192, 160])
    parser.add_argument("--roi", type=int, nargs=3, default=[96, 96, 96])
    parser.add_argument("--features", type=int, nargs="+", default=[32, 64, 128, 256, 320])
    parser.add_argument(
        "--sw-batch-size",
        type=int,
        default=None,
        help="windows per forward (default as the bundle: 4 on CUDA, 1 on CPU)",
    )
    parser.add_argument("--overlap", type=float, default=0.5)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--output", default=str(Path(__file__).parent / "results" / "inference_3d.json"))
    a = parser.parse_args(argv)
    if a.sw_batch_size is None:
        import torch

        a.sw_batch_size = 4 if torch.cuda.is_available() else 1
    args = {
        "shape": a.shape,
        "roi": a.roi,
        "features": a.features,
        "sw_batch_size": a.sw_batch_size,
        "overlap": a.overlap,
        "repeats": a.repeats,
        "threads": a.threads,
    }
    ctx = mp.get_context("spawn")
    results = {}
    for heads in ("decoder", "last"):
        queue = ctx.Queue()
        proc = ctx.Process(target=_run, args=(heads, args, queue))
        proc.start()
        results["lexu_multi_head" if heads == "decoder" else "single_head"] = queue.get()
        proc.join()
    multi, single = results["lexu_multi_head"], results["single_head"]
    summary = {
        "config": args,
        "machine": platform.machine(),
        "models": results,
        "ratios_multi_over_single": {
            "time": multi["median_seconds"] / single["median_seconds"],
            "peak_memory": multi["peak_memory_mib"] / single["peak_memory_mib"],
            "parameters": multi["parameters"] / single["parameters"],
        },
    }
    out = Path(a.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))
    return summary


if __name__ == "__main__":
    main()
