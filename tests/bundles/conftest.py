"""Checks shared by the bundle end-to-end tests (tests/bundles/test_*.py), handed out by the ``bundle_checks`` fixture.

The session fixture ``bundle_checks`` returns :class:`BundleChecks`, whose static methods hold the mechanics every
bundle test repeats: the model-zoo checks (``verify_metadata`` offline against the shipped schema, ``verify_net_in_out``
of the default network, ``ckpt_export`` compared with the eager network), the metric-table and inference-output checks
of the RIGA-like (2D PNG) and HECKTOR-like (3D PET/CT) bundles, and the in-process one-rank DDP training run. What a
bundle tests beyond these (its own numbers, its own recomputations) stays in its test file.
"""

from __future__ import annotations

import csv
import json
import math
import shutil
import socket
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

__all__ = ["BundleChecks", "bundle_checks"]

REPO = Path(__file__).resolve().parents[2]
SCHEMA = REPO / "monai_lexu" / "schemas" / "meta_schema_20240725.json"  # MONAI's official schema, shipped
# UncertaintyReport's default table rows
METRICS = {"SR", "DC", "NCC", "band/core", "soft_dice", "NLL", "WME", "ME", "ECE"}


class BundleChecks:
    """The shared checks; every method asserts on values and fails with pytest's assertion report."""

    repo = REPO
    schema = SCHEMA
    metrics = METRICS

    # ------------------------------------------------------------------ configs
    @staticmethod
    def parser(config_files: Sequence[str | Path], **overrides: Any):
        """A ``monai.bundle.ConfigParser`` over ``config_files`` (read in order) with ``overrides`` set by id."""
        from monai.bundle import ConfigParser

        parser = ConfigParser()
        parser.read_config([str(f) for f in config_files])
        parser.update(overrides)
        return parser

    @staticmethod
    def train_small(bundle: Path, tmp_path_factory: pytest.TempPathFactory, overrides: Callable[[Path], dict]) -> Path:
        """Run train.json + cpu_small.json of ``bundle`` with ``overrides(tmp)`` in a fresh folder ``tmp``.

        Returns:
            ``tmp`` (named after the bundle), where the overrides place the data, checkpoints and outputs.
        """
        from monai.bundle import run

        tmp = tmp_path_factory.mktemp(bundle.name)
        run(config_file=[str(bundle / "configs" / f"{n}.json") for n in ("train", "cpu_small")], **overrides(tmp))
        return tmp

    # ------------------------------------------------------------------ model-zoo checks
    @staticmethod
    def verify_metadata(bundle: Path) -> dict:
        """``verify_metadata`` of ``<bundle>/configs/metadata.json`` offline against the shipped schema.

        Returns:
            the metadata as a dict, for the bundle's own value checks.
        """
        from monai.bundle import verify_metadata

        meta_file = bundle / "configs" / "metadata.json"
        verify_metadata(meta_file=str(meta_file), filepath=str(SCHEMA))
        return json.loads(meta_file.read_text())

    @staticmethod
    def assert_metadata_rejected_without(bundle: Path, tmp_path: Path, *keys: str) -> None:
        """A copy of the bundle's metadata without the entry at the nested ``keys`` fails ``verify_metadata``.

        The ValueError must name the removed key (``keys[-1]``).
        """
        from monai.bundle import verify_metadata

        meta = json.loads((bundle / "configs" / "metadata.json").read_text())
        node = meta
        for key in keys[:-1]:
            node = node[key]
        del node[keys[-1]]
        path = tmp_path / "metadata.json"
        path.write_text(json.dumps(meta))
        with pytest.raises(ValueError, match=keys[-1]):
            verify_metadata(meta_file=str(path), filepath=str(SCHEMA))

    @staticmethod
    def verify_net_in_out(bundle: Path, n: int = 2) -> None:
        """``verify_net_in_out`` of the default ``network_def`` of ``inference.json``, input ``n`` x the divisor."""
        from monai.bundle import verify_net_in_out

        verify_net_in_out(
            net_id="network_def",
            meta_file=str(bundle / "configs" / "metadata.json"),
            config_file=str(bundle / "configs" / "inference.json"),
            n=n,
            bundle_root=str(bundle),
        )

    @staticmethod
    def assert_export_equals_eager(
        bundle: Path,
        ckpt: Path,
        filepath: Path,
        eager: torch.nn.Module,
        input_shape: Sequence[int],
        configs: Sequence[str] = ("inference.json",),
        output_shape: Sequence[int] | None = None,
        **overrides: Any,
    ) -> None:
        """``ckpt_export`` of ``network_def`` with ``ckpt``, then the TorchScript module must equal the eager network.

        Args:
            bundle: the bundle folder.
            ckpt: the trained state dict, loaded into both the exported and the ``eager`` network.
            filepath: where the TorchScript file is written.
            eager: an independently built network of the same architecture (its weights are replaced by ``ckpt``).
            input_shape: shape of the random input, (1, C, *S).
            configs: config file names in ``<bundle>/configs``, read in order.
            output_shape: if given, the expected output shape, e.g. (1, K*L, *S).
            overrides: config ids overridden for the export, e.g. ``features``.
        """
        from monai.bundle import ckpt_export

        ckpt_export(
            net_id="network_def",
            filepath=str(filepath),
            ckpt_file=str(ckpt),
            meta_file=str(bundle / "configs" / "metadata.json"),
            config_file=[str(bundle / "configs" / name) for name in configs],
            bundle_root=str(bundle),
            **overrides,
        )
        scripted = torch.jit.load(str(filepath)).eval()
        eager.load_state_dict(torch.load(ckpt, map_location="cpu", weights_only=True))
        eager.eval()
        x = torch.rand(*input_shape)
        with torch.no_grad():
            exported, expected = scripted(x), eager(x)
        if output_shape is not None:
            assert tuple(exported.shape) == tuple(output_shape)
        torch.testing.assert_close(exported, expected, atol=1e-5, rtol=1e-5)  # also requires equal shapes

    # ------------------------------------------------------------------ metric tables
    @staticmethod
    def metric_summary(path: Path) -> dict[str, dict[str, str]]:
        """The rows of an UncertaintyReport ``*_summary.csv`` by metric; the table must have exactly the default
        metrics."""
        summary = {r["metric"]: r for r in csv.DictReader(path.open())}
        assert set(summary) == METRICS
        return summary

    @staticmethod
    def run_riga_evaluation(bundle: Path, overrides: dict) -> Path:
        """Run train.json + evaluate.json + cpu_small.json of a RIGA-like bundle and check its test table.

        The table (``metrics_test_*`` in ``overrides["output_dir"]``) of the 4 synthetic Magrabia images has the
        default metrics, soft Dice in [0, 1], NLL > 0 and SR in [-1, 1] (or NaN) for disc and cup, and one per-image
        row per test image.

        Returns:
            the output folder.
        """
        from monai.bundle import run

        configs = [str(bundle / "configs" / f"{n}.json") for n in ("train", "evaluate", "cpu_small")]
        run(config_file=configs, **overrides)
        out = Path(overrides["output_dir"])
        summary = BundleChecks.metric_summary(out / "metrics_test_summary.csv")
        for structure in ("disc", "cup"):
            assert 0.0 <= float(summary["soft_dice"][structure]) <= 1.0
            assert float(summary["NLL"][structure]) > 0.0
            sr = float(summary["SR"][structure])
            assert math.isnan(sr) or -1.0 <= sr <= 1.0
        rows = list(csv.DictReader((out / "metrics_test_per_image.csv").open()))
        assert len(rows) == 4 and rows[0]["id"].startswith("Magrabia_")
        return out

    # ------------------------------------------------------------------ inference outputs
    @staticmethod
    def read_prob_unc(out: Path, stem: str, unc_max: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Load ``<stem>_prob.nii.gz`` and ``<stem>_unc.nii.gz`` from ``out`` and check them.

        Both maps have the same shape, the probability lies in [0, 1], the uncertainty in [0, ``unc_max``]
        (``unc_max`` None: no upper bound checked).

        Returns:
            (prob, unc) as float64 arrays, channel-last.
        """
        import nibabel as nib

        prob = nib.load(out / f"{stem}_prob.nii.gz").get_fdata()
        unc = nib.load(out / f"{stem}_unc.nii.gz").get_fdata()
        assert unc.shape == prob.shape
        assert prob.min() >= 0.0 and prob.max() <= 1.0
        assert unc.min() >= 0.0
        if unc_max is not None:
            assert unc.max() <= unc_max + 1e-6
        return prob, unc

    @staticmethod
    def check_riga_inference(bundle: Path, trained: Path, overrides: dict, unc_max: float) -> None:
        """Run ``inference.json`` (+ ``cpu_small.json``) of a RIGA-like bundle on the 4 synthetic Magrabia PNGs.

        The bundle's ``bundle_root``, ``ckpt_dir``, ``image_size`` and ``features`` are taken from ``overrides``;
        the outputs go to ``<trained>/inference``. Every image gets a 2-structure probability map and an
        uncertainty map (bounded by ``unc_max``) in the input's spatial shape.
        """
        from monai.bundle import run
        from PIL import Image

        images = sorted((trained / "data" / "images").glob("Magrabia_*.png"))
        assert len(images) == 4
        out = trained / "inference"
        kept = ("bundle_root", "ckpt_dir", "image_size", "features")
        run(
            config_file=[str(bundle / "configs" / "inference.json"), str(bundle / "configs" / "cpu_small.json")],
            input_glob=str(trained / "data" / "images" / "Magrabia_*.png"),
            output_dir=str(out),
            **{k: v for k, v in overrides.items() if k in kept},
        )
        width, height = Image.open(images[0]).size
        for image in images:
            prob, _ = BundleChecks.read_prob_unc(out, image.stem, unc_max)
            # MONAI's PIL reader gives (W, H); the maps are written channel-last with the input's spatial shape
            assert prob.shape[:2] == (width, height) and prob.shape[-1] == 2

    @staticmethod
    def run_hecktor_inference(bundle: Path, trained: Path, **overrides: Any) -> list[str]:
        """Run ``inference.json`` (+ ``cpu_small.json``) of a HECKTOR-like bundle on the raw CT/PET of fold 0.

        The validation fold's raw ``<id>__CT.nii.gz`` / ``<id>__PT.nii.gz`` are copied to ``<trained>/inputs``,
        the checkpoint is read from ``<trained>/models`` and the maps go to ``<trained>/inference``.

        Returns:
            the sorted ids of the fold-0 cases.
        """
        from monai.bundle import run

        datalist = json.loads((trained / "data" / "datalist.json").read_text())
        held_out = sorted(c["id"] for c in datalist["training"] if c["fold"] == 0)
        raw = trained / "data" / "raw"
        inputs = trained / "inputs"
        inputs.mkdir()
        for cid in held_out:  # inference on the raw CT/PET of the validation fold only
            for modality in ("CT", "PT"):
                shutil.copy(raw / "imagesTr" / f"{cid}__{modality}.nii.gz", inputs)
        run(
            config_file=[str(bundle / "configs" / "inference.json"), str(bundle / "configs" / "cpu_small.json")],
            bundle_root=str(bundle),
            ckpt_dir=str(trained / "models"),
            dataset_dir=str(trained / "data"),  # the preprocessing recipe recorded with the training data
            input_dir=str(inputs),
            output_dir=str(trained / "inference"),
            **overrides,
        )
        return held_out

    @staticmethod
    def check_ct_space_maps(trained: Path, cid: str, unc_max: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Check the label/probability/uncertainty maps of case ``cid`` written by :meth:`run_hecktor_inference`.

        All three are in the original CT space (shape, affine, voxel size of the raw CT); prob and unc have 2
        structure channels (GTVp, GTVn), prob in [0, 1], unc in [0, ``unc_max``] and not zero everywhere; the label
        map holds {0, 1, 2} and is foreground exactly where the highest structure probability is >= 0.5.

        Returns:
            (prob, unc) as float64 arrays of shape (*CT shape, 2).
        """
        import nibabel as nib

        ct = nib.load(trained / "data" / "raw" / "imagesTr" / f"{cid}__CT.nii.gz")
        out = trained / "inference"
        label, prob, unc = (nib.load(out / f"{cid}__CT_{kind}.nii.gz") for kind in ("label", "prob", "unc"))
        for img in (label, prob, unc):
            assert img.shape[:3] == ct.shape
            np.testing.assert_allclose(img.affine, ct.affine, atol=1e-4)
            np.testing.assert_allclose(img.header.get_zooms()[:3], ct.header.get_zooms(), atol=1e-4)
        assert prob.shape[3:] == unc.shape[3:] == (2,)
        p, u = prob.get_fdata(), unc.get_fdata()
        assert 0.0 <= p.min() and p.max() <= 1.0 and 0.0 <= u.min() and u.max() > 0.0
        if unc_max is not None:
            assert u.max() <= unc_max + 1e-6
        label_values = np.asarray(label.dataobj)
        assert set(np.unique(label_values)) <= {0, 1, 2}
        # the label map is the structure with the highest probability >= 0.5
        np.testing.assert_array_equal(label_values > 0, p.max(-1) >= 0.5)
        return p, u

    # ------------------------------------------------------------------ HECKTOR-like evaluation
    @staticmethod
    def run_hecktor_evaluation(bundle: Path, overrides: dict) -> tuple[Any, dict[str, dict], list[Path]]:
        """Run train.json + evaluate.json + cpu_small.json of a HECKTOR-like bundle and check its outputs.

        The fold-0 table has the default metrics, the cross-validation summary is written, and the saved maps
        (``metrics_fold0_maps/*.npz``) are exactly the fold-0 validation volumes.

        Returns:
            (the evaluation's ConfigParser with ``overrides``, the preprocessed validation volumes by id, the map
            files sorted by name).
        """
        from monai.bundle import run

        configs = [bundle / "configs" / f"{n}.json" for n in ("train", "evaluate", "cpu_small")]
        run(config_file=[str(c) for c in configs], **overrides)
        out = Path(overrides["output_dir"])
        BundleChecks.metric_summary(out / "metrics_fold0_summary.csv")
        assert (out / "metrics_folds_summary.md").is_file()
        parser = BundleChecks.parser(configs, **overrides)
        volumes = {d["id"]: d for d in parser.get_parsed_content("validate#dataset")}
        maps = sorted((out / "metrics_fold0_maps").glob("*.npz"))
        assert maps and {m.stem for m in maps} == set(volumes)
        return parser, volumes, maps

    @staticmethod
    def recompute_saved_slices(
        maps: Sequence[Path],
        volumes: dict[str, dict],
        window_stats: Callable[[torch.Tensor], torch.Tensor],
        patch_size: Sequence[int],
        sw_batch_size: int,
    ) -> list[tuple[Any, np.ndarray]]:
        """Recompute the saved maps' slices with an independent sliding-window pass and compare.

        Args:
            maps: the ``.npz`` maps saved by UncertaintyReport (keys prob, unc (L, H, W), slice, ...).
            volumes: the preprocessed validation volumes by id (``image`` (C, *S)).
            window_stats: per window (B, C, *patch) -> (B, >= 2L, *patch) whose first L channels are the
                probability and next L the uncertainty (further channels are returned for the caller's checks).
            patch_size: sliding-window size (the bundle's ``patch_size``).
            sw_batch_size: windows per forward.

        Returns:
            per map, (the loaded npz, the recomputed stats of its slice (channels, H, W)); prob and unc already
            checked equal (L = 2).
        """
        from monai.inferers import SlidingWindowInferer

        sliding = SlidingWindowInferer(patch_size, sw_batch_size=sw_batch_size, overlap=0.5, mode="gaussian")
        results = []
        for path in maps:
            saved = np.load(path)
            image = torch.as_tensor(volumes[path.stem]["image"])[None].float()
            with torch.no_grad():
                stats = sliding(image, window_stats)[0, ..., int(saved["slice"])].numpy()
            np.testing.assert_allclose(saved["prob"], stats[0:2], atol=1e-5)
            np.testing.assert_allclose(saved["unc"], stats[2:4], atol=1e-6)
            results.append((saved, stats))
        return results

    # ------------------------------------------------------------------ distributed training
    @staticmethod
    def train_in_one_process_gloo_group(
        bundle: Path, overrides: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> tuple[torch.nn.Module, dict[str, torch.Tensor]]:
        """Run train.json + multi_gpu_train.json + cpu_small.json in this process as the only rank of a gloo group.

        ``overrides`` are the bundle's test overrides; checkpoints and outputs go to ``tmp_path``. Checks that the
        process group is gloo, the trainer's network is wrapped in DistributedDataParallel and its data loader uses
        a DistributedSampler; the group is destroyed afterwards.

        Returns:
            the unwrapped network (``trainer.network.module``) after training, and the saved ``model.pt`` state.
        """
        import torch.distributed as dist
        from monai.bundle import ConfigWorkflow
        from monai.data import DistributedSampler
        from torch.nn.parallel import DistributedDataParallel

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        env = dict(RANK="0", LOCAL_RANK="0", WORLD_SIZE="1", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        workflow = ConfigWorkflow(
            config_file=[str(bundle / "configs" / f"{n}.json") for n in ("train", "multi_gpu_train", "cpu_small")],
            workflow_type="train",
            **{**overrides, "ckpt_dir": str(tmp_path / "models"), "output_dir": str(tmp_path / "eval")},
        )
        try:
            workflow.initialize()
            assert dist.is_initialized() and dist.get_backend() == "gloo"
            trainer = workflow.parser.get_parsed_content("train#trainer")
            assert isinstance(trainer.network, DistributedDataParallel)
            assert isinstance(trainer.data_loader.sampler, DistributedSampler)
            workflow.run()
        finally:
            import ignite.distributed as idist

            workflow.finalize()
            if dist.is_initialized():
                dist.destroy_process_group()
            # ignite caches the distributed context it saw: re-detect it (serial now), or later tests in this worker
            # would still see a process group (MONAI's Cumulative metrics and CheckpointSaver then fail)
            idist.sync()
        return trainer.network.module, torch.load(
            tmp_path / "models" / "model.pt", map_location="cpu", weights_only=True
        )


@pytest.fixture(scope="session")
def bundle_checks() -> type[BundleChecks]:
    """The shared bundle checks (see :class:`BundleChecks`)."""
    return BundleChecks
