"""Cost of LEXU's extra heads and loss, measured side by side in one run.

Compares, on the same backbone and input size:

* parameters and inference time per image of the multi-head network (LEXU: one head per decoder stage; the
  uncertainty map comes from the same forward pass) against the same network with a single head;
* the time of one training step (forward, loss, backward, Adam step) with ``LEXULoss`` (MRO + DGM) on the
  multi-head network against plain BCE on the single-head network.

Writes a JSON file (default ``benchmarks/results/multihead.json``) and prints it. Example::

    python benchmarks/bench_multihead.py --backbone resnet50 --size 256 --batch 16
    python benchmarks/bench_multihead.py --backbone plain --size 128 --batch 16 --repeats 5
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch

from monai_lexu.inferers import MultiHeadInferer
from monai_lexu.losses import LEXULoss
from monai_lexu.networks import MultiHeadUNet


def _timeit(fn, repeats: int, warmup: int = 1) -> dict[str, float]:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return {"median_s": statistics.median(times), "min_s": min(times), "repeats": repeats}


def _batch(batch: int, channels: int, size: int, raters: int, structures: int, dims: int, device: torch.device):
    g = torch.Generator().manual_seed(0)
    shape = (size,) * dims
    image = torch.rand((batch, channels, *shape), generator=g)
    masks = (torch.rand((batch, raters, structures, *shape), generator=g) > 0.5).float()
    target = {
        "raters": masks.to(device),
        "rater_valid": torch.ones(batch, raters, dtype=torch.bool, device=device),
        "soft_label": masks.mean(1).to(device),
        "rater_var": masks.var(1).to(device),
    }
    return image.to(device), target


def _soft_label_bce(pred: torch.Tensor, target: dict) -> torch.Tensor:
    """Plain BCE of the single head's logits (B, L, *S) against the soft label: the baseline training loss."""
    return torch.nn.functional.binary_cross_entropy_with_logits(pred, target["soft_label"])


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbone", default="resnet50", choices=["resnet50", "plain"])
    parser.add_argument("--spatial-dims", type=int, default=2, choices=[2, 3])
    parser.add_argument("--size", type=int, default=256, help="input edge length (default 256, the RIGA recipe)")
    parser.add_argument("--channels", type=int, default=3)
    parser.add_argument("--structures", type=int, default=2)
    parser.add_argument("--raters", type=int, default=6)
    parser.add_argument("--batch", type=int, default=16, help="training batch size (inference uses batch 1)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: leave torch's default)")
    parser.add_argument("--output", default=str(Path(__file__).parent / "results" / "multihead.json"))
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    common = dict(
        spatial_dims=args.spatial_dims, in_channels=args.channels, out_channels=args.structures, backbone=args.backbone
    )
    nets = {
        "lexu_multi_head": MultiHeadUNet(heads="decoder", **common),
        "single_head": MultiHeadUNet(heads="last", **common),
    }
    result: dict = {
        "config": vars(args),
        "device": str(device),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "machine": platform.machine(),
        "models": {},
    }
    image1, _ = _batch(1, args.channels, args.size, args.raters, args.structures, args.spatial_dims, device)
    image, target = _batch(
        args.batch, args.channels, args.size, args.raters, args.structures, args.spatial_dims, device
    )
    for name, net in nets.items():
        net = net.to(device)
        inferer = MultiHeadInferer(num_heads=net.num_heads)
        net.eval()

        def infer(net=net, inferer=inferer):
            with torch.no_grad():
                inferer(image1, net)
            if device.type == "cuda":
                torch.cuda.synchronize()

        if net.num_heads > 1:
            loss_fn = LEXULoss(num_heads=net.num_heads, beta=5.0)
            loss_name = "LEXULoss(beta=5, MRO)"
        else:
            loss_fn = _soft_label_bce
            loss_name = "BCEWithLogits(soft label)"
        opt = torch.optim.Adam(net.parameters(), lr=5e-5)

        def step(net=net, loss_fn=loss_fn, opt=opt):
            net.train()
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(net(image), target)
            loss.backward()
            opt.step()
            if device.type == "cuda":
                torch.cuda.synchronize()

        result["models"][name] = {
            "num_heads": net.num_heads,
            "parameters": sum(p.numel() for p in net.parameters()),
            "inference_per_image": _timeit(infer, args.repeats),
            "train_step": {"loss": loss_name, "batch": args.batch, **_timeit(step, max(2, args.repeats // 2))},
        }
    multi, single = result["models"]["lexu_multi_head"], result["models"]["single_head"]
    result["ratios_multi_over_single"] = {
        "parameters": multi["parameters"] / single["parameters"],
        "inference_time": multi["inference_per_image"]["median_s"] / single["inference_per_image"]["median_s"],
        "train_step_time": multi["train_step"]["median_s"] / single["train_step"]["median_s"],
    }
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
