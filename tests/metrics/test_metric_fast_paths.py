"""The metric suite's fast paths give the reference formulas' values (issue 11, item 4): float32 element-wise work with
float64 sums, exact float64 threshold semantics, one calibration binning, entropies computed once per image, the
explicit distance correlation; every value within 1e-6 relative of the all-float64 formula."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
import torch

from monai_lexu.contract import entropy_of_probabilities
from monai_lexu.metrics import (
    band_core_ratio,
    distance_correlation,
    mean_entropy,
    negative_log_likelihood,
    normalized_cross_correlation,
    soft_dice,
    weighted_mean_entropy,
)
from monai_lexu.metrics.calibration import CalibrationMetric, bin_statistics
from monai_lexu.metrics.entropy import entropy_map
from monai_lexu.metrics.utils import threshold_for

REL = 1e-6


def _maps(seed: int = 0, n: int = 3, raters: int = 10):
    """float32 maps (n, 2, 64, 64) with values ON the thresholds: soft labels k / raters (3/10 = float32(0.3)), and
    probabilities 0, 1, eps, 1 - eps, float32(t), its neighbours, tiny values."""
    g = torch.Generator().manual_seed(seed)
    soft = torch.randint(0, raters + 1, (n, 2, 64, 64), generator=g).float() / raters
    prob = torch.rand(n, 2, 64, 64, generator=g)
    special = torch.tensor(
        [0.0, 1.0, 1e-5, 1 - 1e-5, 1e-7, 1e-30, 1 - 2**-24, 0.1, 0.3, 0.5, 0.7, 0.9, 1e-6, 0.999999],
        dtype=torch.float32,
    )
    special = torch.cat(
        [special, torch.nextafter(special, torch.tensor(2.0)), torch.nextafter(special, torch.tensor(-1.0))]
    )
    flat = prob.view(-1)
    flat[: special.numel()] = special.clamp(0, 1)
    flat[-special.numel() :] = special.clamp(0, 1)
    unc = (prob * (1 - prob)).float()
    return prob, soft, unc


def _rel(a, b) -> float:
    a, b = torch.as_tensor(a, dtype=torch.float64), torch.as_tensor(b, dtype=torch.float64)
    both_nan = torch.isnan(a) & torch.isnan(b)
    assert torch.equal(torch.isnan(a), torch.isnan(b))
    d = ((a - b).abs() / b.abs().clamp_min(1e-300))[~both_nan]
    return float(d.max()) if d.numel() else 0.0


# ------------------------------------------------------------------ reference formulas (the pre-issue-11 float64 code)
def _soft_dice_ref(p, g, thresholds=(0.1, 0.3, 0.5, 0.7, 0.9), smooth=1e-6):
    p, g = p.double().flatten(2), g.double().flatten(2)
    dices = []
    for t in thresholds:
        pt, gt = p > t, g > t
        dices.append((2.0 * (pt & gt).sum(-1).double() + smooth) / (pt.sum(-1) + gt.sum(-1) + smooth))
    return torch.stack(dices).mean(0)


def _nll_ref(p, g, eps=1e-5):
    p, g = p.double().clamp(eps, 1 - eps), g.double()
    return -(g * torch.log(p) + (1 - g) * torch.log1p(-p)).flatten(2).mean(-1)


def _entropy_ref(p):
    p = p.double()
    return (-(torch.xlogy(p, p) + torch.xlogy(1 - p, 1 - p)) / math.log(2)).clamp_min(0)


def _band_core_ref(u, s, tol=1e-6):
    u, s = u.double().flatten(2), s.double().flatten(2)
    band, core = (s > tol) & (s < 1 - tol), s >= 1 - tol
    bm = torch.where(band, u, 0.0).sum(-1) / band.sum(-1).clamp(min=1)
    cm = torch.where(core, u, 0.0).sum(-1) / core.sum(-1).clamp(min=1)
    return bm / cm


def _ece_ref(p, g, num_bins=10):
    """MONAI's bins, float64 sums: sum_b n_b |mean_p - mean_g| / sum_b n_b per (image, structure)."""
    edges = torch.linspace(0.0, 1.0 + torch.finfo(torch.float32).eps, num_bins + 1)
    out = torch.zeros(p.shape[:2], dtype=torch.float64)
    for b in range(p.shape[0]):
        for c in range(p.shape[1]):
            pv, gv = p[b, c].flatten(), g[b, c].flatten()
            idx = torch.bucketize(pv, edges[1:]).clamp(max=num_bins - 1)
            n = torch.bincount(idx, minlength=num_bins).double()
            sp = torch.zeros(num_bins, dtype=torch.float64).index_add_(0, idx, pv.double())
            sg = torch.zeros(num_bins, dtype=torch.float64).index_add_(0, idx, gv.double())
            out[b, c] = (sp - sg).abs().sum() / n.sum()
    return out


# ------------------------------------------------------------------ tests
@pytest.mark.parametrize("op", [">", ">=", "<", "<="])
def test_threshold_for_gives_float64_comparisons(op):
    values = torch.tensor([0.3, 0.1, 0.7, 1e-6, 1 - 1e-6, 0.5], dtype=torch.float32)
    values = torch.cat(
        [values, torch.nextafter(values, torch.tensor(2.0)), torch.nextafter(values, torch.tensor(-1.0))]
    )
    cmp = {">": torch.gt, ">=": torch.ge, "<": torch.lt, "<=": torch.le}[op]
    for t in (0.3, 0.1, 0.7, 1e-6, 1 - 1e-6, 0.5, 0.25):
        assert torch.equal(cmp(values, threshold_for(t, torch.float32, op)), cmp(values.double(), t)), (op, t)


def test_soft_dice_band_core_equal_the_float64_formulas_on_threshold_values():
    prob, soft, unc = _maps()
    # the same masks, so exactly the reference (returned as float32, like the reference's .float())
    assert _rel(soft_dice(prob, soft), _soft_dice_ref(prob, soft).float()) == 0.0
    assert _rel(soft_dice(soft, soft), _soft_dice_ref(soft, soft).float()) == 0.0
    assert _rel(band_core_ratio(unc, soft), _band_core_ref(unc, soft)) <= REL
    assert soft_dice(prob, soft).dtype == torch.float32


def test_nll_equals_the_float64_formula_including_clamped_pixels():
    prob, soft, _ = _maps(1)
    assert _rel(negative_log_likelihood(prob, soft), _nll_ref(prob, soft)) <= REL
    confident = torch.zeros(1, 1, 32, 32)
    confident[..., :16] = 1.0  # every pixel clamped: the float32 clamp alone would be 2e-5 off
    target = torch.zeros_like(confident)
    target[..., :8] = 1.0
    assert _rel(negative_log_likelihood(confident, target), _nll_ref(confident, target)) <= REL
    with pytest.raises(ValueError, match="must hold probabilities"):
        negative_log_likelihood(prob * 2, soft)


def test_entropies_equal_the_xlogy_formula():
    prob, soft, _ = _maps(2)
    p = torch.cat([prob.flatten(), torch.tensor([0.0, 1.0, 1e-7, 1e-30, 1 - 2**-24])])
    h, ref = entropy_map(p), _entropy_ref(p)
    assert h.dtype == torch.float32
    assert float((h.double() - ref).abs().max()) < 1e-6 and float(h[-5:-3].abs().max()) == 0.0
    h64 = entropy_of_probabilities(p.double())
    assert float((h64 - ref).abs().max()) < 1e-12  # float64: the same up to the (1 - p) log(1 - p) of tiny p, where
    tiny = torch.tensor([1e-30], dtype=torch.float64)  # log1p keeps the -p term that 1 - p rounds away:
    assert float(entropy_of_probabilities(tiny)) == pytest.approx(1e-30 * (math.log2(1e30) + 1 / math.log(2)), rel=1e-9)
    wme_ref = (_entropy_ref(soft) * _entropy_ref(prob)).flatten(2).sum(-1) / _entropy_ref(soft).flatten(2).sum(-1)
    assert _rel(weighted_mean_entropy(prob, soft), wme_ref) <= REL
    assert _rel(mean_entropy(prob), _entropy_ref(prob).flatten(2).mean(-1)) <= REL
    # the report's path: entropies once, then pred_is_entropy / target_is_entropy
    shared = weighted_mean_entropy(entropy_map(prob), entropy_map(soft), pred_is_entropy=True, target_is_entropy=True)
    assert _rel(shared, wme_ref) <= REL


def test_calibration_one_binning_equals_monai_bins_and_the_float64_ece():
    from monai.metrics import calibration_binning

    prob, soft, _ = _maps(3)
    counts, sum_p, sum_g = bin_statistics(prob, soft, 10)
    _, _, monai_counts = calibration_binning(prob, soft, num_bins=10)
    assert torch.equal(counts.float(), monai_counts)  # every pixel in MONAI's bin (values on the edges included)
    metric = CalibrationMetric(num_bins=10)
    ece = metric(prob, soft)[0]
    assert _rel(ece, _ece_ref(prob, soft)) <= REL
    from monai.metrics import CalibrationErrorMetric

    monai_ece = CalibrationErrorMetric(num_bins=10)(y_pred=prob, y=soft)
    assert _rel(ece, monai_ece) <= 1e-4  # MONAI accumulates float32 means: ~1e-6..1e-5 from the exact value


def test_ncc_equals_pearson_r():
    prob, soft, unc = _maps(4)
    a, b = unc.double().flatten(2), soft.double().flatten(2)
    ac, bc = a - a.mean(-1, keepdim=True), b - b.mean(-1, keepdim=True)
    ref = (ac * bc).sum(-1) / torch.sqrt((ac * ac).sum(-1) * (bc * bc).sum(-1))
    assert _rel(normalized_cross_correlation(unc, soft), ref) <= REL
    const = torch.zeros(1, 1, 8, 8)
    assert torch.isnan(normalized_cross_correlation(const, soft[:1, :1, :8, :8])).all()


@pytest.mark.parametrize("n", [5, 60, 400])
def test_distance_correlation_direct_equals_dcor(n):
    import dcor

    rng = np.random.default_rng(n)
    a = rng.normal(size=(n, 2))
    b = np.stack([a[:, 0] ** 2 + 0.1 * rng.normal(size=n), rng.normal(size=n)], 1)
    ours = distance_correlation(torch.as_tensor(a), torch.as_tensor(b))
    ref = [dcor.distance_correlation(a[:, c], b[:, c]) for c in range(2)]
    np.testing.assert_allclose(ours.double().numpy(), ref, rtol=1e-6, atol=1e-7)
    constant = distance_correlation(torch.ones(n, 1), torch.as_tensor(b[:, :1]))
    assert float(constant[0]) == 0.0


def test_report_does_not_import_dcor():
    code = (
        "import sys, torch\n"
        "from monai_lexu.handlers.uncertainty_report import UncertaintyReport\n"
        "r = UncertaintyReport(['a', 'b'], '/tmp')\n"
        "g = torch.Generator().manual_seed(0)\n"
        "for i in range(6):\n"
        "    s = (torch.rand(2, 16, 16, generator=g) * 3).floor() / 3\n"
        "    r.add(torch.rand(2, 16, 16, generator=g), torch.rand(2, 16, 16, generator=g), s, s * (1 - s), str(i))\n"
        "v = r.summary().values\n"
        "assert v['DC'].shape == (2,) and 'dcor' not in sys.modules, sorted(m for m in sys.modules if 'dcor' in m)\n"
        "print('ok')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and "ok" in proc.stdout, proc.stderr[-2000:]


def test_batched_calls_are_computed_in_chunks_with_the_same_values():
    from monai_lexu.metrics import BandCoreRatioMetric, SoftDiceMetric

    prob, soft, unc = _maps(5, n=5)
    for metric_cls, args in (
        (SoftDiceMetric, (prob, soft)),
        (BandCoreRatioMetric, (unc, soft)),
        (CalibrationMetric, (prob, soft)),
    ):
        batched, single = metric_cls(), metric_cls()
        batched.chunk_voxels = prob[0].numel() * 2  # 2 images per chunk: 3 chunks
        out = batched(*args)
        for i in range(5):
            single(*(a[i : i + 1] for a in args))
        b, s = batched.get_buffer(), single.get_buffer()
        for x, y in zip(b if isinstance(b, list) else [b], s if isinstance(s, list) else [s]):
            torch.testing.assert_close(x, y, rtol=0, atol=0, equal_nan=True)
        first = out[0] if isinstance(out, list) else out
        assert first.shape[0] == 5


def test_mask_counts_nan_rows_and_the_nll_paths_equal_the_plain_formulas():
    """count_true / mask_as / nan_rows (uint8 views, amin) equal count_nonzero / float products / isnan.any; the NLL
    without clamped pixels (no masks) and with only some pixels clamped below or above equals the float64 formula;
    soft Dice with every threshold compared at once equals the reference on NaN rows too."""
    from monai_lexu.metrics.utils import count_true, mask_as, nan_rows

    prob, soft, unc = _maps(2)
    mask = prob > 0.3
    assert torch.equal(count_true(mask), torch.count_nonzero(mask, dim=-1))
    assert torch.equal(unc * mask_as(mask, unc.dtype), unc * mask)
    nan_map = prob.clone()
    nan_map[1, 0, 5, 5] = float("nan")
    assert torch.equal(nan_rows(nan_map.flatten(2)), torch.isnan(nan_map.flatten(2)).any(-1))
    assert torch.equal(nan_rows(prob.flatten(2)), torch.zeros(3, 2, dtype=torch.bool))
    inner = prob.clamp(0.01, 0.99)  # nothing clamped: the path without masks
    assert _rel(negative_log_likelihood(inner, soft), _nll_ref(inner, soft)) <= REL
    for special in (1e-7, 1.0, 0.0, 1 - 1e-7):  # a few clamped pixels of one kind, the rest not
        p = inner.clone()
        p[0, 1, :3, :7] = special
        assert _rel(negative_log_likelihood(p, soft), _nll_ref(p, soft)) <= REL
    out = negative_log_likelihood(nan_map, soft)
    assert torch.isnan(out[1, 0]) and not torch.isnan(out[0]).any()
    sd = soft_dice(nan_map, soft)
    assert torch.isnan(sd[1, 0]) and _rel(sd[0], _soft_dice_ref(prob, soft)[0].float()) == 0.0


@pytest.mark.parametrize(
    "shape, view",
    [
        ((3, 2, 65536), None),  # rows of whole words: the packed path (groups of 128 words)
        ((2, 5, 255 * 8 * 3), None),  # a group of exactly 255 words: every byte lane reaches 255 when all are true
        ((2, 2, 1024 + 8), None),  # 129 words: one group of 129
        ((2, 2, 8 * 257), None),  # 257 words: prime > 255, no group: the uint8 sum
        ((2, 3, 4099), None),  # not whole words: the uint8 sum
        ((4, 4096), "offset"),  # rows starting off a word boundary: the uint8 sum
        ((4, 8192), "transposed"),  # not contiguous: the uint8 sum
    ],
)
@pytest.mark.parametrize("fill", ["random", "all", "none"])
def test_count_true_equals_count_nonzero_on_every_layout(shape, view, fill):
    """The packed (64-bit word) count equals ``count_nonzero`` exactly: full lanes (all true: 255 per lane, no carry),
    empty masks, odd sizes, offsets and non-contiguous views (the fallback)."""
    from monai_lexu.metrics.utils import _packed_count, count_true

    g = torch.Generator().manual_seed(sum(shape))
    mask = {"random": torch.rand(shape, generator=g) > 0.37, "all": torch.ones(shape, dtype=torch.bool)}.get(
        fill, torch.zeros(shape, dtype=torch.bool)
    )
    if view == "offset":
        buffer = torch.zeros(mask.numel() + 3, dtype=torch.bool)
        buffer[3:] = mask.flatten()
        mask = buffer[3:].view(shape)  # storage offset 3
    elif view == "transposed":
        mask = mask.view(shape[1], shape[0]).t()
    counts = count_true(mask)
    assert counts.dtype == torch.int64 and counts.shape == mask.shape[:-1]
    assert torch.equal(counts, torch.count_nonzero(mask, dim=-1))
    packed = _packed_count(mask)
    whole_words = shape[-1] % 8 == 0 and view is None and shape[-1] // 8 % 257 != 0
    assert (packed is not None) == whole_words
