"""Active-learning scoring cost per image: monai-lexu's single-pass uncertainty vs MONAI Label's epistemic scoring.

Both run in this one process (MONAI Label 0.8.5 must be installed: ``make label-env``), interleaved, on the same
unlabeled images of a local datastore and the same network:

- **single pass**: :class:`monai_lexu.label.server.LexuUncertaintyScoring` with the app's ``LexuInferTask`` (the
  bundle's own preprocessing, multi-head sliding-window inference and post-processing, one forward pass per image);
- **MC dropout**: MONAI Label's ``EpistemicScoring`` (``monailabel/tasks/scoring/epistemic_v2.py``) with its default
  ``simulation_size=5`` over an inference task built with the settings of MONAI Label's ``monaibundle`` sample app
  (``train_mode=True, skip_writer=True, dropout=0.2, post_filter=[SaveImaged, Invertd]``), one worker. MONAI Label's
  own ``BundleInferTask`` cannot pair the PET with a HECKTOR CT id (``KeyError: 'ct'``), so that task is the app's
  ``LexuInferTask`` with those settings, handing the probabilities to ``EpistemicScoring``.

The bundle is ``lexu_hecktor`` with its CPU recipe (``configs/inference.json`` + ``configs/cpu_small.json`` merged
into one ``inference.json`` of a temporary bundle, so both tasks build the same network; the MC-dropout task adds
``dropout=0.2`` to it, which adds no parameters) with randomly initialised weights (cost does not depend on them), on
synthetic HECKTOR PET/CT cases (72x72x48 CT). Reported: CPU seconds per image (``time.process_time``; the machines
are shared, so CPU time is the stable figure) and wall seconds, median over the repeats, and the ratio MC dropout /
single pass. Example::

    .venv-label/bin/python benchmarks/bench_label_scoring.py          # -> benchmarks/results/label_scoring.json
    .venv-label/bin/python benchmarks/bench_label_scoring.py --images 2 --repeats 2 --threads 1
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import statistics
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _bundle(tmp: Path) -> Path:
    """A copy of lexu_hecktor whose inference.json is inference.json + cpu_small.json, with random weights."""
    import torch
    from monai.bundle import ConfigParser

    from monai_lexu.datasets.hecktor import default_recipe, write_recipe

    src = REPO / "bundles" / "lexu_hecktor"
    dst = tmp / "bundles" / "lexu_hecktor"
    (dst / "configs").mkdir(parents=True)
    (dst / "models").mkdir()
    shutil.copy(src / "configs" / "metadata.json", dst / "configs")
    parser = ConfigParser()
    parser.read_config([str(src / "configs" / "inference.json"), str(src / "configs" / "cpu_small.json")])
    config = {k: v for k, v in parser.config.items() if k != "_meta_"}
    (dst / "configs" / "inference.json").write_text(json.dumps(config, indent=4) + "\n")
    parser.config["bundle_root"] = str(dst)
    network = parser.get_parsed_content("network_def", instantiate=True)
    torch.save(network.state_dict(), dst / "models" / "model.pt")
    write_recipe(dst / "models", default_recipe(synthetic=True))
    return dst


def _studies(tmp: Path, images: int) -> Path:
    from monai_lexu.datasets.hecktor.synthetic import write_synthetic_hecktor

    raw = write_synthetic_hecktor(tmp / "raw", num_cases=images)
    studies = tmp / "studies"
    studies.mkdir()
    for path in sorted((Path(raw) / "imagesTr").glob("*.nii.gz")):
        shutil.copy(path, studies)
    return studies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=3, help="unlabeled HECKTOR CT ids in the datastore")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved repeats of both scorings")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (0: torch's default)")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "label_scoring.json"))
    args = parser.parse_args()

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from monai.transforms import Invertd, SaveImaged

    from monai_lexu.label.server import (  # registers the torchvision stand-in before monailabel's bundle tasks
        LexuInferTask,
        LexuUncertaintyScoring,
        SafeLocalDatastore,
    )

    from monailabel.tasks.scoring.epistemic_v2 import EpistemicScoring  # isort: skip

    class MCDropoutTask(LexuInferTask):
        """MONAI Label's own BundleInferTask cannot read HECKTOR (no PET from the CT id: ``KeyError: 'ct'``), so the
        MC-dropout side uses the app's task (same pairing and pre-processing) with MONAI Label's epistemic settings
        and hands the probabilities (not the label map) to ``EpistemicScoring`` as ``pred``."""

        def post_transforms(self, data=None):
            return [*super().post_transforms(data)[:-1], lambda d: {**d, "pred": d["prob"]}]

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        bundle = _bundle(tmp)
        studies = _studies(tmp, args.images)
        datastore = SafeLocalDatastore(str(studies), extensions=["*.nii.gz"], auto_reload=False)
        ids = sorted(datastore.get_unlabeled_images())
        single = LexuUncertaintyScoring({"lexu_hecktor": LexuInferTask(str(bundle), {})})
        mc_task = MCDropoutTask(
            str(bundle), {}, train_mode=True, skip_writer=True, dropout=0.2, post_filter=[SaveImaged, Invertd]
        )
        mc = EpistemicScoring(mc_task)  # MONAI Label's defaults: simulation_size=5
        times: dict[str, dict[str, list[float]]] = {
            "single_pass": {"cpu": [], "wall": []},
            "mc_dropout": {"cpu": [], "wall": []},
        }
        for _ in range(args.repeats):
            for name, run in (
                ("single_pass", lambda: single({"force": True, "device": "cpu"}, datastore)),
                ("mc_dropout", lambda: mc({"device": "cpu", "max_workers": 1}, datastore)),
            ):
                for image_id in ids:  # both skip images scored by the same weights: reset
                    datastore.update_image_info(image_id, {"epistemic_ts": 0, "lexu_uncertainty": {}})
                cpu, wall = time.process_time(), time.perf_counter()
                run()
                times[name]["cpu"].append((time.process_time() - cpu) / len(ids))
                times[name]["wall"].append((time.perf_counter() - wall) / len(ids))
        params = sum(p.numel() for p in single.infers["lexu_hecktor"].network.parameters())
        params_mc = sum(p.numel() for p in mc_task.network.parameters())
        summary = {k: {m: statistics.median(v) for m, v in t.items()} for k, t in times.items()}
    result = {
        "config": {
            "bundle": "lexu_hecktor (inference.json + cpu_small.json)",
            "images": len(ids),
            "image_shape": [72, 72, 48],
            "repeats": args.repeats,
            "threads": args.threads,
            "mc_dropout": "monailabel 0.8.5 EpistemicScoring(simulation_size=5, default) over "
            "LexuInferTask(dropout=0.2, train_mode=True, post_filter=[SaveImaged, Invertd]) as its monaibundle app "
            "sets BundleInferTask up",
            "parameters": {"single_pass": params, "mc_dropout": params_mc},
        },
        "machine": platform.machine(),
        "seconds_per_image": times,
        "median_seconds_per_image": summary,
        "ratio_mc_dropout_over_single_pass": {
            m: summary["mc_dropout"][m] / summary["single_pass"][m] for m in ("cpu", "wall")
        },
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(
        json.dumps(
            {"median_seconds_per_image": summary, "ratio": result["ratio_mc_dropout_over_single_pass"]}, indent=2
        )
    )


if __name__ == "__main__":
    main()
