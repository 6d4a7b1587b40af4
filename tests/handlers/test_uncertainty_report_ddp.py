"""UncertaintyReport under DDP: two processes in a real gloo group gather to the single-process summary."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from monai_lexu.handlers import UncertaintyReport

STRUCTURES = ["disc", "cup"]
# rank 0 evaluates images 0-2, rank 1 images 3-6 (uneven, as the last DistributedSampler shard can be)
SHARDS = [range(0, 3), range(3, 7)]


def _case(i: int) -> dict:
    g = torch.Generator().manual_seed(100 + i)
    raters = (torch.rand((3, 2, 8, 8), generator=g) > 0.6).float()
    soft = raters.mean(0)
    return {
        "prob": (0.7 * soft + 0.3 * torch.rand((2, 8, 8), generator=g)).clamp(0, 1),
        "unc": torch.rand((2, 8, 8), generator=g) * 0.25,
        "soft_label": soft,
        "rater_var": raters.var(0),
        "ground_truth": (torch.rand((2, 8, 8), generator=g) > 0.5).float(),
        "id": None if i in (1, 4) else f"case{i}",  # no id: numbered by the position in the gathered list
    }


def _report(output_dir: Path) -> UncertaintyReport:
    return UncertaintyReport(STRUCTURES, output_dir, prefix="m", ground_truth_key="ground_truth")


def _add(report: UncertaintyReport, indices: range) -> None:
    for i in indices:
        c = _case(i)
        report.add(c["prob"], c["unc"], c["soft_label"], c["rater_var"], c["id"], ground_truth=c["ground_truth"])


def _rank(tmp: str) -> None:
    """One torchrun rank of the gloo group: add this rank's images, summarise (collective), complete (rank 0 writes)."""
    import ignite.distributed as idist
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo")  # torchrun's environment: RANK, WORLD_SIZE, MASTER_ADDR/PORT
    idist.sync()
    rank = dist.get_rank()
    try:
        report = _report(Path(tmp) / f"out{rank}")
        _add(report, SHARDS[rank])
        summary = report.summary()
        means = report.completed()
        # a rank without any image: every rank raises the same clear error instead of hanging in the gather
        empty = _report(Path(tmp) / f"empty{rank}")
        _add(empty, SHARDS[0] if rank == 0 else range(0))
        try:
            empty.summary()
            error = ""
        except RuntimeError as e:
            error = str(e)
        (Path(tmp) / f"summary{rank}.pkl").write_bytes(pickle.dumps((summary, means, error)))
    finally:
        dist.destroy_process_group()


def _run_two_ranks(tmp: Path, timeout_s: float = 300.0) -> None:
    """Runs this file as a script under real ``torchrun`` (2 CPU processes, gloo).

    Fresh processes rather than a fork of the pytest worker: forking a process whose torch/OpenMP thread pools are
    already running can deadlock the child (CI hung here once under a loaded xdist run).
    """
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", __file__, str(tmp)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the 2-process gloo group did not finish within {timeout_s} s")
    assert proc.returncode == 0, proc.stderr[-3000:]


def _assert_same(summary, reference) -> None:
    assert summary.structures == reference.structures and summary.ids == reference.ids
    assert summary.metrics == reference.metrics and summary.notes == reference.notes
    for name in reference.values:
        np.testing.assert_allclose(summary.values[name], reference.values[name], rtol=1e-6, atol=1e-7, err_msg=name)
    for name in reference.image_columns:
        np.testing.assert_allclose(summary.image_columns[name], reference.image_columns[name], rtol=1e-6, err_msg=name)
    for got, want in zip(summary.reliability, reference.reliability):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)


def test_two_gloo_ranks_gather_the_single_process_summary(tmp_path):
    single = _report(tmp_path / "single")
    _add(single, range(0, 7))  # rank 0's images first, then rank 1's: the order of the gathered buffers
    reference = single.summary()
    assert reference.ids == ["case0", "1", "case2", "case3", "4", "case5", "case6"]
    assert np.isfinite(reference.values["SR"]).all() and np.isfinite(reference.values["DC"]).all()

    _run_two_ranks(tmp_path)

    for rank in (0, 1):  # every rank gets the whole summary (the gather is an all-gather)
        summary, means, error = pickle.loads((tmp_path / f"summary{rank}.pkl").read_bytes())
        assert "rank(s) [1] saw no image" in error
        _assert_same(summary, reference)
        for structure, expected in reference.statistics()[0].items():
            assert means[structure] == pytest.approx(expected, nan_ok=True)
    assert (tmp_path / "out0" / "m.json").is_file() and (tmp_path / "out0" / "m_reliability.png").is_file()
    assert not (tmp_path / "out1").exists()  # only rank 0 writes
    single.completed()
    for name in ("m_per_image.csv", "m_summary.csv", "m_summary.md"):
        assert (tmp_path / "out0" / name).read_text() == (tmp_path / "single" / name).read_text(), name


if __name__ == "__main__":
    _rank(sys.argv[1])
