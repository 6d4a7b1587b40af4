"""How close LEXU, MC dropout and Deep Ensembles run to the single-head floor (issue 11, items 1-3), in ONE process.

Every figure is a ratio of CPU time (``time.process_time``, all threads of this process) to the floor measured in the
same round: methods are interleaved (the order rotates every round), each round times every method once, and the
JSON keeps the median and range of the per-round ratios, at 1 and 2 torch threads (set explicitly), with the machine
load (``os.getloadavg``) before and after each setting. "before" rows run the code as it was before issue 11
(``torch.var`` over the head axis, ``nn.Dropout``'s ``bernoulli_`` masks, one MC sample per forward) side by side
with the current code, so before/after come from the same process and the same load.

Cases (``--cases``, default all):

* ``2d``: the CPU recipe network (plain U-Net, features 16..256, 3 x 128^2, 2 structures, batch 1). Floor = the
  single-head network + ``MultiHeadInferer(1)``; LEXU = 4 decoder heads + ``MultiHeadInferer(4)``; DE(5) = 5
  single-head members (loop and ``forward_mode="vmap"``); one convolution layer as 5 separate convs vs one grouped
  conv (what vmap turns it into).
* ``mc``: MC dropout on the recipe network and the mcdropout_fusion_synthetic network (features 16, 32, 64,
  1 x 128^2, p = 0.2): plain pass, one dropout pass, T = 20 (before: unbatched, ``bernoulli_``; ``rand24``: the
  previous cheap masks, ``torch.rand`` per element; after: default ``MCDropoutInferer``, 16-bit masks), each over the
  floor (the same network with ``MultiHeadInferer(1)`` in eval mode).
* ``train``: one training step (forward, loss, backward, Adam), batch 16, 128^2, cpu_small network: LEXULoss on the
  4-head network over plain BCE on the single-head network: ``lexu`` (the fused loss), ``lexu_unfused`` (the
  unfused ops with the two-pass head variance: the state before the fused loss), ``lexu_before`` (unfused ops with
  ``torch.var``: before issue 11); and the loss alone (forward + backward on fixed logits) over plain BCE.
* ``resnet50``: the paper network (ResNet50 U-Net) at 3 x 256^2: LEXU (5 heads) and DE(5) over the floor.
* ``3d``: one 96^3 window of the lexu_hecktor network (features 32..320, 2 channels, 2 structures): LEXU over the
  single head.
* ``mc_profile``: torch.profiler's share of self CPU time per operator in a dropout pass (before/after).

Example::

    nice python benchmarks/bench_speed_floor.py                       # -> benchmarks/results/speed_floor.json
    python benchmarks/bench_speed_floor.py --cases 2d mc --rounds 5 --threads 1
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from contextlib import contextmanager
from functools import partial
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from monai_lexu.contract import mean_var_over_heads, split_heads
from monai_lexu.inferers import MCDropoutInferer, MultiHeadInferer, mc_dropout
from monai_lexu.losses import LEXULoss, sample_valid_raters
from monai_lexu.networks import DeepEnsemble, MultiHeadUNet

CASES = ("2d", "mc", "train", "resnet50", "3d", "mc_profile")
RECIPE_2D = (16, 32, 64, 128, 256)
MCDROPOUT_BUNDLE = (16, 32, 64)
HECKTOR_3D = (32, 64, 128, 256, 320)


def _before_prob_unc(logits: torch.Tensor, num_heads: int) -> torch.Tensor:
    """``heads_to_prob_unc`` as it was before issue 11: ``torch.var`` over the head axis."""
    probs = torch.sigmoid(split_heads(logits, num_heads).float())
    return torch.cat([probs.mean(1), probs.var(1, unbiased=True)], dim=1)


class _UnfusedLEXULoss(LEXULoss):
    """LEXULoss's forward as it was before the fused loss (rater gather, target concatenation, element-wise BCE and
    its ``transpose(0, 1).reshape`` copy, DGM through autograd); ``var_fn`` computes the head variance: the
    contract's two-pass ``mean_var_over_heads`` (the state after item 1's first change) or ``torch.var`` (before
    issue 11)."""

    def __init__(self, *args, torch_var: bool = False, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.torch_var = torch_var

    def forward(self, input: torch.Tensor, target) -> torch.Tensor:
        t = self._parse_target(target, input)
        k = self.num_heads
        logits = split_heads(input.float(), k)
        soft = t["soft_label"].float()
        sampled = sample_valid_raters(t["raters"], t["rater_valid"], num_draws=k - 1, generator=self.generator)
        targets = torch.cat([sampled.float(), soft.unsqueeze(1)], dim=1)
        weights = torch.tensor(self.head_weights, dtype=torch.float32)
        per_head = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
        per_head = per_head.transpose(0, 1).reshape(k, -1).mean(dim=1)
        total = self.alpha * (weights * per_head).sum()
        probs = torch.sigmoid(logits)
        head_var = probs.var(dim=1, unbiased=True) if self.torch_var else mean_var_over_heads(probs)[1]
        mse = F.mse_loss(head_var, t["rater_var"].float())
        return total + self.beta * torch.sqrt(torch.clamp(mse, min=torch.finfo(torch.float32).tiny))


class _Rand24Dropout(nn.Dropout):
    """The previous cheap mask (before the 16-bit masks): ``torch.rand`` (one 32-bit draw, 24 bits per element)."""

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        keep = torch.rand_like(input).ge_(self.p).mul_(1.0 / (1.0 - self.p))
        return keep.mul_(input)


@contextmanager
def _rand24_masks(net: nn.Module):
    """``mc_dropout(cheap_masks=False)`` with every ``nn.Dropout`` drawing ``torch.rand`` masks."""

    with mc_dropout(net, cheap_masks=False):
        swapped = [m for m in net.modules() if type(m) is nn.Dropout]
        for m in swapped:
            m.__class__ = _Rand24Dropout
        try:
            yield
        finally:
            for m in swapped:
                m.__class__ = nn.Dropout


def _no_grad(fn: Callable[[], object]) -> Callable[[], None]:
    def run() -> None:
        with torch.no_grad():
            fn()

    return run


def _with(ctx, fn: Callable[[], object]) -> object:
    with ctx:
        return fn()


def _rounds(methods: dict[str, Callable[[], None]], floor: str, rounds: int) -> dict:
    """Time every method once per round (rotating order); ratios of CPU time to ``floor`` in the same round."""
    names = list(methods)
    for name in names:  # warm-up (allocator, oneDNN primitives, template copies)
        methods[name]()
    cpu: dict[str, list[float]] = {n: [] for n in names}
    wall: dict[str, list[float]] = {n: [] for n in names}
    for r in range(rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            w, c = time.perf_counter(), time.process_time()
            methods[name]()
            cpu[name].append(time.process_time() - c)
            wall[name].append(time.perf_counter() - w)
    out = {}
    for name in names:
        ratios = [a / b for a, b in zip(cpu[name], cpu[floor])]
        out[name] = {
            "cpu_s_median": statistics.median(cpu[name]),
            "wall_s_median": statistics.median(wall[name]),
            f"ratio_to_{floor}": {
                "median": statistics.median(ratios),
                "min": min(ratios),
                "max": max(ratios),
            },
        }
    return out


def _net(features, heads, in_ch=3, out_ch=2, dims=2, dropout=0.0, backbone="plain") -> nn.Module:
    torch.manual_seed(0)
    kw = {} if backbone == "resnet50" else {"features": features}
    return MultiHeadUNet(dims, in_ch, out_ch, backbone=backbone, heads=heads, dropout=dropout, **kw).eval()


def _case_2d(rounds: int) -> dict:
    x = torch.rand(1, 3, 128, 128, generator=torch.Generator().manual_seed(0))
    single, lexu = _net(RECIPE_2D, "last"), _net(RECIPE_2D, "decoder")
    member = partial(MultiHeadUNet, 2, 3, 2, backbone="plain", features=RECIPE_2D, heads="last")
    de_loop = DeepEnsemble(member, 5, seed=0).eval()
    de_vmap = DeepEnsemble(member, 5, seed=0, forward_mode="vmap").eval()
    de_vmap.load_state_dict(de_loop.state_dict())
    inf1, inf4, inf5 = MultiHeadInferer(1), MultiHeadInferer(lexu.num_heads), MultiHeadInferer(5)
    # one 3x3 convolution of the second level (32 -> 32 channels at 64^2) for 5 members: separate vs grouped
    convs = [nn.Conv2d(32, 32, 3, padding=1) for _ in range(5)]
    grouped = nn.Conv2d(5 * 32, 5 * 32, 3, padding=1, groups=5)
    feat = torch.rand(1, 32, 64, 64)
    feat5 = feat.repeat(1, 5, 1, 1)
    methods = {
        "floor": _no_grad(lambda: inf1(x, single)),
        "lexu": _no_grad(lambda: inf4(x, lexu)),
        "lexu_before": _no_grad(lambda: _before_prob_unc(lexu(x), lexu.num_heads)),
        "de5_loop": _no_grad(lambda: inf5(x, de_loop)),
        "de5_vmap": _no_grad(lambda: inf5(x, de_vmap)),
        "de5_before": _no_grad(lambda: _before_prob_unc(de_loop(x), 5)),
        "conv_x1": _no_grad(lambda: convs[0](feat)),
        "conv_x5_separate": _no_grad(lambda: [c(feat) for c in convs]),
        "conv_x5_grouped": _no_grad(lambda: grouped(feat5)),
    }
    res = _rounds(methods, "floor", rounds)
    conv = _rounds({k: methods[k] for k in ("conv_x1", "conv_x5_separate", "conv_x5_grouped")}, "conv_x1", rounds)
    for k in ("conv_x1", "conv_x5_separate", "conv_x5_grouped"):
        res[k] = conv[k]
    return res


def _case_mc(rounds: int) -> dict:
    out = {}
    for label, features, in_ch, out_ch in (
        ("recipe_net", RECIPE_2D, 3, 2),
        ("mcdropout_bundle_net", MCDROPOUT_BUNDLE, 1, 1),
    ):
        x = torch.rand(1, in_ch, 128, 128, generator=torch.Generator().manual_seed(0))
        net = _net(features, "last", in_ch, out_ch, dropout=0.2)
        inf1 = MultiHeadInferer(1)
        before_pass = MCDropoutInferer(1, max_batch_voxels=0, cheap_masks=False)
        after_pass = MCDropoutInferer(1)
        methods = {
            "floor": _no_grad(lambda net=net, x=x, i=inf1: i(x, net)),
            "plain_pass": _no_grad(lambda net=net, x=x: net(x)),
            "dropout_pass_before": _no_grad(lambda net=net, x=x, i=before_pass: i(x, net)),
            "dropout_pass": _no_grad(lambda net=net, x=x, i=after_pass: i(x, net)),
            # the same as plain_pass (the network alone, no inferer) with the dropout modules drawing masks: the
            # like-for-like ratio of item 2 (the inferer's own cost is in floor / plain_pass)
            "dropout_pass_net": _no_grad(lambda net=net, x=x: _with(mc_dropout(net), lambda: net(x))),
            "dropout_pass_rand24": _no_grad(lambda net=net, x=x, i=inf1: _with(_rand24_masks(net), lambda: i(x, net))),
            "t20_before": _no_grad(
                lambda net=net, x=x: MCDropoutInferer(20, max_batch_voxels=0, cheap_masks=False)(x, net)
            ),
            "t20_unbatched": _no_grad(lambda net=net, x=x: MCDropoutInferer(20, max_batch_voxels=0)(x, net)),
            "t20": _no_grad(lambda net=net, x=x: MCDropoutInferer(20)(x, net)),
            "t20_rand24": _no_grad(
                lambda net=net, x=x: _with(_rand24_masks(net), lambda: MCDropoutInferer(20, cheap_masks=False)(x, net))
            ),
            "t20_one_batch": _no_grad(lambda net=net, x=x: MCDropoutInferer(20, max_batch_voxels=20 * 128**2)(x, net)),
        }
        out[label] = _rounds(methods, "floor", rounds)
    return out


def _case_train(rounds: int) -> dict:
    g = torch.Generator().manual_seed(0)
    image = torch.rand(16, 3, 128, 128, generator=g)
    masks = (torch.rand(16, 6, 2, 128, 128, generator=g) > 0.5).float()
    target = {
        "raters": masks,
        "rater_valid": torch.ones(16, 6, dtype=torch.bool),
        "soft_label": masks.mean(1),
        "rater_var": masks.var(1),
    }
    single, lexu = _net(RECIPE_2D, "last"), _net(RECIPE_2D, "decoder")
    lexu_u, lexu_b = _net(RECIPE_2D, "decoder"), _net(RECIPE_2D, "decoder")

    def step(net, loss_fn, opt) -> Callable[[], None]:
        def run() -> None:
            net.train()
            opt.zero_grad(set_to_none=True)
            loss_fn(net(image), target).backward()
            opt.step()

        return run

    def bce(pred, t):
        return F.binary_cross_entropy_with_logits(pred, t["soft_label"])

    methods = {
        "bce_single_head": step(single, bce, torch.optim.Adam(single.parameters(), lr=1e-4)),
        "lexu": step(lexu, LEXULoss(lexu.num_heads, beta=5.0), torch.optim.Adam(lexu.parameters(), lr=1e-4)),
        "lexu_unfused": step(
            lexu_u, _UnfusedLEXULoss(lexu.num_heads, beta=5.0), torch.optim.Adam(lexu_u.parameters(), lr=1e-4)
        ),
        "lexu_before": step(
            lexu_b,
            _UnfusedLEXULoss(lexu.num_heads, beta=5.0, torch_var=True),
            torch.optim.Adam(lexu_b.parameters(), lr=1e-4),
        ),
    }
    res = _rounds(methods, "bce_single_head", rounds)
    # the loss alone (forward + backward on fixed logits), same rounds discipline
    logits = torch.randn(16, 4 * 2, 128, 128, generator=g)

    def loss_only(loss_fn) -> Callable[[], None]:
        def run() -> None:
            x = logits.clone().requires_grad_(True)
            loss_fn(x, target).backward()

        return run

    def bce_only() -> None:
        x = logits[:, :2].clone().requires_grad_(True)
        bce(x, target).backward()

    loss_methods = {
        "loss_bce_single_head": bce_only,
        "loss_lexu": loss_only(LEXULoss(4, beta=5.0)),
        "loss_lexu_unfused": loss_only(_UnfusedLEXULoss(4, beta=5.0)),
        "loss_lexu_before": loss_only(_UnfusedLEXULoss(4, beta=5.0, torch_var=True)),
    }
    res.update(_rounds(loss_methods, "loss_bce_single_head", 3 * rounds))
    return res


def _case_resnet50(rounds: int) -> dict:
    x = torch.rand(1, 3, 256, 256, generator=torch.Generator().manual_seed(0))
    single, lexu = _net(None, "last", backbone="resnet50"), _net(None, "decoder", backbone="resnet50")
    member = partial(MultiHeadUNet, 2, 3, 2, backbone="resnet50", heads="last")
    de_loop = DeepEnsemble(member, 5, seed=0).eval()
    inf1, inf5 = MultiHeadInferer(1), MultiHeadInferer(5)
    methods = {
        "floor": _no_grad(lambda: inf1(x, single)),
        "lexu": _no_grad(lambda: inf5(x, lexu)),
        "lexu_before": _no_grad(lambda: _before_prob_unc(lexu(x), lexu.num_heads)),
        "de5_loop": _no_grad(lambda: inf5(x, de_loop)),
        "de5_before": _no_grad(lambda: _before_prob_unc(de_loop(x), 5)),
    }
    return _rounds(methods, "floor", rounds)


def _case_3d(rounds: int) -> dict:
    x = torch.rand(1, 2, 96, 96, 96, generator=torch.Generator().manual_seed(0))
    single = _net(HECKTOR_3D, "last", 2, 2, dims=3)
    lexu = _net(HECKTOR_3D, "decoder", 2, 2, dims=3)
    inf1, infk = MultiHeadInferer(1), MultiHeadInferer(lexu.num_heads)
    methods = {
        "floor": _no_grad(lambda: inf1(x, single)),
        "lexu": _no_grad(lambda: infk(x, lexu)),
        "lexu_before": _no_grad(lambda: _before_prob_unc(lexu(x), lexu.num_heads)),
    }
    return _rounds(methods, "floor", rounds)


def _case_mc_profile(rounds: int) -> dict:
    """Share of self CPU time per operator of a dropout pass (torch.profiler), before and after: why it costs."""
    from monai_lexu.inferers import mc_dropout

    out = {}
    for label, features, in_ch, out_ch in (
        ("recipe_net", RECIPE_2D, 3, 2),
        ("mcdropout_bundle_net", MCDROPOUT_BUNDLE, 1, 1),
    ):
        net = _net(features, "last", in_ch, out_ch, dropout=0.2)
        x = torch.rand(1, in_ch, 128, 128)
        for cheap in (False, True):
            with torch.no_grad(), mc_dropout(net, cheap_masks=cheap):
                for _ in range(2):
                    net(x)
                with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
                    for _ in range(rounds):
                        net(x)
            events = prof.key_averages()
            total = sum(e.self_cpu_time_total for e in events)
            top = sorted(events, key=lambda e: -e.self_cpu_time_total)[:8]
            out[f"{label}, cheap_masks={cheap}"] = {e.key: round(100 * e.self_cpu_time_total / total, 1) for e in top}
    return {"self_cpu_percent_top8": out}


RUNNERS = {
    "2d": _case_2d,
    "mc": _case_mc,
    "train": _case_train,
    "resnet50": _case_resnet50,
    "3d": _case_3d,
    "mc_profile": _case_mc_profile,
}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=CASES)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rounds", type=int, default=7, help="rounds per case (3d and resnet50: half, at least 3)")
    parser.add_argument("--output", default=str(Path(__file__).parent / "results" / "speed_floor.json"))
    args = parser.parse_args(argv)
    result: dict = {
        "config": vars(args),
        "torch": torch.__version__,
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "measure": "CPU time (time.process_time) per call, ratio to the floor in the same round; median/min/max",
        "cpu_recipe": "plain U-Net 16..256, 128^2, batch 1 (inference) / 16 (training)",
        "results": {},
    }
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    for threads in args.threads:
        torch.set_num_threads(threads)
        for case in args.cases:
            rounds = max(3, args.rounds // 2) if case in ("3d", "resnet50") else args.rounds
            load_before = os.getloadavg()
            start = time.perf_counter()
            res = RUNNERS[case](rounds)
            result["results"][f"{case}@{threads}t"] = {
                "threads": torch.get_num_threads(),
                "rounds": rounds,
                "loadavg_before": load_before,
                "loadavg_after": os.getloadavg(),
                "wall_s": time.perf_counter() - start,
                "methods": res,
            }
            tmp = out.with_suffix(".json.tmp")
            tmp.write_text(json.dumps(result, indent=2) + "\n")
            os.replace(tmp, out)
            print(f"{case}@{threads}t done in {time.perf_counter() - start:.0f} s, load {os.getloadavg()[0]:.1f}")
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
