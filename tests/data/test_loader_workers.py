"""loader_workers caps the loader workers by the cores this process may use; set_num_threads / default_num_threads
(the bundles' num_threads setting); synthetic_marker finds the note."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

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


# ------------------------------------------------------------------ torch threads (issue 11, item 8)
@pytest.fixture
def restore_threads():
    import torch

    previous = torch.get_num_threads()
    yield torch
    torch.set_num_threads(previous)


def test_set_num_threads_explicit_auto_and_errors(restore_threads, monkeypatch):
    from monai_lexu.data import NUM_THREADS_ENV, set_num_threads

    torch = restore_threads
    assert set_num_threads(2) == 2 and torch.get_num_threads() == 2
    assert set_num_threads("1") == 1 and torch.get_num_threads() == 1
    assert set_num_threads(None) == 1  # null: torch's current setting stays
    monkeypatch.setenv(NUM_THREADS_ENV, "2")
    assert set_num_threads("auto") == 2 and torch.get_num_threads() == 2
    for bad in (0, -1, "two", 1.5, True):
        with pytest.raises(ValueError, match=r"num_threads must be a positive integer, 'auto' or null"):
            set_num_threads(bad)
    monkeypatch.setenv(NUM_THREADS_ENV, "0")
    with pytest.raises(ValueError, match=r"\$MONAI_LEXU_NUM_THREADS must be a positive integer"):
        set_num_threads("auto")


@pytest.mark.parametrize(
    "cores, env, cuda, expected",
    [
        (2, {}, False, 1),  # the shared 2-core machines: one thread per process
        (1, {}, False, 1),
        (16, {}, False, 16),
        (16, {"LOCAL_WORLD_SIZE": "4"}, False, 4),  # CPU DDP: the cores shared by the node's processes
        (16, {"LOCAL_WORLD_SIZE": "4"}, True, 1),  # GPU DDP: one thread per process
        (16, {"OMP_NUM_THREADS": "3"}, False, 3),  # an explicit OpenMP setting (torchrun sets 1) wins
        (16, {"MONAI_LEXU_NUM_THREADS": "5", "OMP_NUM_THREADS": "3"}, False, 5),
    ],
)
def test_default_num_threads_policy(monkeypatch, cores, env, cuda, expected):
    import torch

    from monai_lexu.data import default_num_threads

    for name in ("MONAI_LEXU_NUM_THREADS", "OMP_NUM_THREADS", "LOCAL_WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cores)))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    assert default_num_threads()[0] == expected


def test_every_bundle_run_sets_its_threads_first():
    """Every config with an ``initialize`` list (all bundles, root configs and overlays) calls set_num_threads first,
    and every root config (the ones run alone) defines ``num_threads`` ("auto")."""
    call = "$monai_lexu.data.set_num_threads(@num_threads)"
    checked = 0
    for path in sorted((Path(__file__).resolve().parents[2] / "bundles").glob("*/configs/*.json")):
        if path.parent.parent.name == "meduhip_riga":  # not a family bundle; its own owner wires its configs
            continue
        config = json.loads(path.read_text())
        if "initialize" in config:
            assert config["initialize"][0] == call, path
            checked += 1
        if path.name in ("train.json", "inference.json", "train_slices.json"):
            assert config.get("num_threads") == "auto", path
    assert checked >= 30


# ------------------------------------------------------------------ GPU habits (issue 11, item 7)
def test_configure_backends_sets_cudnn_benchmark_only_when_not_deterministic():
    import torch

    from monai_lexu.data import configure_backends

    before = torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic
    try:
        assert configure_backends(False) is True and not torch.backends.cudnn.deterministic
        assert configure_backends(True) is False and torch.backends.cudnn.deterministic
        with pytest.raises(ValueError, match="deterministic must be true or false"):
            configure_backends("yes")
    finally:
        torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = before


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_speed_options_keep_outputs_and_checkpoint_keys(spatial_dims):
    import torch

    from monai_lexu.data import speed_options
    from monai_lexu.networks import MultiHeadUNet

    torch.manual_seed(0)
    net = MultiHeadUNet(spatial_dims, 2, 2, backbone="plain", features=[4, 8, 16]).eval()
    x = torch.rand(1, 2, *([16] * spatial_dims))
    with torch.no_grad():
        ref = net(x)
    keys = list(net.state_dict())
    assert speed_options(net, compile=False, channels_last=True) is net  # in place
    fmt = torch.channels_last if spatial_dims == 2 else torch.channels_last_3d
    conv = next(p for p in net.parameters() if p.ndim == spatial_dims + 2)
    assert conv.is_contiguous(memory_format=fmt)
    with torch.no_grad():
        torch.testing.assert_close(net(x), ref, rtol=1e-5, atol=1e-5)
    speed_options(net, compile="eager")  # the graph capture of torch.compile, without a C++ toolchain
    with torch.no_grad():
        torch.testing.assert_close(net(x), ref, rtol=1e-5, atol=1e-5)
    assert list(net.state_dict()) == keys  # checkpoints load as before


def test_family_configs_wire_the_gpu_habits():
    """pin_memory on every loader (training, validation/evaluation, inference), non_blocking on every engine,
    cudnn.benchmark through configure_backends(@deterministic), compile / channels_last through speed_options."""
    root = Path(__file__).resolve().parents[2] / "bundles" / "_base"
    for dataset in ("hecktor", "riga"):
        configs = {
            n: json.loads((root / dataset / "configs" / n).read_text()) for n in ("train.json", "inference.json")
        }
        for name, config in configs.items():
            assert config["pin_memory"] == "$torch.cuda.is_available()" and config["deterministic"] is True, name
            assert config["compile"] is False and config["channels_last"] is False, name
            assert config["network"].startswith("$monai_lexu.data.speed_options(@network_def.to(@device)"), name
            assert config["initialize"][1] == "$monai_lexu.data.configure_backends(@deterministic)", name
        train, inference = configs["train.json"], configs["inference.json"]
        for loader in (train["train"]["dataloader"], train["validate"]["dataloader"], inference["dataloader"]):
            assert loader["pin_memory"] == "@pin_memory"
        for engine in (train["train"]["trainer"], train["validate"]["evaluator"], inference["evaluator"]):
            assert engine["non_blocking"] is True
