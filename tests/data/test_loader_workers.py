"""loader_workers caps the loader workers by the cores this process may use; synthetic_marker finds the note."""

from __future__ import annotations

import logging
import os

import pytest

from monai_lexu.data import available_cores, loader_workers, synthetic_marker


def test_available_cores_is_the_affinity():
    assert available_cores() == len(os.sched_getaffinity(0))


@pytest.mark.parametrize(
    "requested, cores, used", [(4, 2, 2), (2, 2, 2), (1, 2, 1), (0, 2, 0), (None, 8, 0), ("3", 2, 2)]
)
def test_loader_workers_cap(requested, cores, used):
    assert loader_workers(requested, cores=cores) == used


def test_loader_workers_default_cores():
    assert loader_workers(10_000) == len(os.sched_getaffinity(0))


def test_loader_workers_logs_the_cap_once(caplog):
    with caplog.at_level(logging.INFO, logger="monai_lexu.data.runtime"):
        loader_workers(7, cores=3)
        loader_workers(7, cores=3)
    assert [r.getMessage() for r in caplog.records] == ["num_workers 7 capped to 3: this process may use 3 CPU cores"]


@pytest.mark.parametrize("bad", [-1, "four", 1.5j])
def test_loader_workers_refuses_bad_values(bad):
    with pytest.raises(ValueError, match="num_workers must be a non-negative integer"):
        loader_workers(bad, cores=2)


def test_synthetic_marker(tmp_path):
    data = tmp_path / "hecktor"
    (data / "raw" / "imagesTr").mkdir(parents=True)
    (data / "datalist.json").write_text("{}")
    assert synthetic_marker(data) is None
    marker = data / "raw" / "SYNTHETIC_DATA.txt"
    marker.write_text("fake")
    assert synthetic_marker(data) == marker
    assert synthetic_marker(data / "datalist.json") == marker
    assert synthetic_marker(data / "raw" / "imagesTr") == marker  # an inference input folder of the set
    assert synthetic_marker(None) is None
