"""The MONAI Label app of monai-lexu: every bundle of the project through MONAI Label's own extension points.

This module imports ``monailabel`` (0.8.5) and runs inside the server (``python -m monai_lexu.label serve``; the app
folder's ``main.py`` only imports :class:`LexuApp`). What each piece does:

- :class:`LexuInferTask` (``BundleInferTask``): reads ``configs/inference.json`` merged with the override configs
  the weights were trained with (``--config cpu_small``), so the network matches the checkpoint; the labels it
  reports are the bundle's structures (``GTVp``/``GTVn``, ``disc``/``cup``), not the head channels of the metadata.
  A HECKTOR image id is the CT; the PET beside it (``<Case>__PT``) is handed to the bundle's own preprocessing
  (missing: HTTP 404 naming the file). Pre-processing, inferer and post-processing are the bundle's own (without
  ``SaveImaged``); then the result is an integer label map on the input grid (NIfTI uint8 in 3D, PNG uint8 in 2D),
  the result JSON carries per-structure summaries (:func:`monai_lexu.label.summary.uncertainty_summary`), and the
  float probability and uncertainty maps are written for the app to store.
- :class:`LexuApp` (``MONAILabelApp``): refuses ids and tags that are not plain names (HTTP 400), stores the float
  maps as label tags ``probability_<structure>``/``uncertainty_<structure>`` of the image and tells the client
  where to download them (``params["maps"]``).
- :class:`LexuTrainTask` (``BundleTrainTask``): ``_fetch_datalist`` builds ``raters`` from the label tags
  (:func:`monai_lexu.label.conventions.rater_tags`); HECKTOR images go through the bundle's converter (raw CT/PET +
  rater masks -> the recipe of the served model), then training runs the bundle's ``train.json`` + overrides.
- :class:`LexuUncertaintyScoring` (``ScoringMethod``) stores each unlabeled image's summed uncertainty from one
  forward pass; :class:`MostUncertain` (``Strategy``) serves the most uncertain image first.
- :class:`SafeLocalDatastore` (``LocalDatastore``): every id, tag and name is checked before MONAI Label's code
  turns it into a path; HECKTOR PET volumes are never listed as images.
"""

from __future__ import annotations

from monai_lexu.label._compat import ensure_torchvision_utils

ensure_torchvision_utils()  # before monailabel.tasks.infer.bundle (see _compat)

import copy  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
from collections.abc import Sequence  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from fastapi import BackgroundTasks, Depends, File, Form, HTTPException, UploadFile  # noqa: E402
from monai.bundle import ConfigParser  # noqa: E402
from monai.transforms import Compose, SaveImaged  # noqa: E402
from monailabel.config import settings  # noqa: E402
from monailabel.datastore.local import LocalDatastore  # noqa: E402
from monailabel.endpoints.user.auth import RBAC, User  # noqa: E402
from monailabel.interfaces.app import MONAILabelApp  # noqa: E402
from monailabel.interfaces.tasks.scoring import ScoringMethod  # noqa: E402
from monailabel.interfaces.tasks.strategy import Strategy  # noqa: E402
from monailabel.tasks.activelearning.first import First  # noqa: E402
from monailabel.tasks.activelearning.random import Random  # noqa: E402
from monailabel.tasks.infer.bundle import BundleConstants, BundleInferTask  # noqa: E402
from monailabel.tasks.train.bundle import BundleTrainTask  # noqa: E402
from monailabel.utils.others.generic import strtobool  # noqa: E402

from monai_lexu.label.conventions import (  # noqa: E402
    CT_SUFFIX,
    UnsafeName,
    check_name,
    image_id_of,
    is_companion_pet,
    map_tag,
    pet_path_for,
    rater_tags,
    split_ext,
)
from monai_lexu.label.summary import total_uncertainty, uncertainty_summary  # noqa: E402

__all__ = [
    "SCORE_KEY",
    "LexuApp",
    "LexuInferTask",
    "LexuTrainTask",
    "LexuUncertaintyScoring",
    "MedUHIPInferTask",
    "MostUncertain",
    "RefusedRequest",
    "SafeLocalDatastore",
]

logger = logging.getLogger(__name__)

SCORE_KEY = "lexu_uncertainty"
"""Image-info key of the stored score, and the name of the scoring method and of the strategy."""
_2D_EXTS = (".png", ".jpg", ".jpeg")


class RefusedRequest(HTTPException):
    """A client error answered with a 4xx status and a message (FastAPI turns it into the response)."""

    def __init__(self, status_code: int, detail: str) -> None:
        super().__init__(status_code=status_code, detail=detail)


def _safe(value: Any, what: str) -> str:
    try:
        return check_name(value, what)
    except UnsafeName as e:
        raise RefusedRequest(400, str(e)) from None


def _merged_parser(config: str, overrides: Sequence[str], bundle_root: str) -> ConfigParser:
    parser = ConfigParser()
    parser.read_config([config, *overrides])
    parser.config.update({"bundle_root": bundle_root})  # type: ignore[union-attr]
    return parser


def _override_files(bundle: Path, config: str) -> list[str]:
    """``configs/<config>.json`` of the bundle when ``config`` is set and the bundle has it."""
    if not config:
        return []
    path = bundle / "configs" / (config if config.endswith(".json") else config + ".json")
    if path.is_file():
        return [str(path)]
    logger.warning("%s has no %s: serving it with its own configs only", bundle.name, path.name)
    return []


def _bundle_dimension(path: str | os.PathLike) -> int:
    """Spatial dimensions of a bundle's input: the length of the first input's ``spatial_shape`` in
    ``configs/metadata.json`` (as MONAI Label reads it)."""
    metadata = json.loads((Path(path) / "configs" / "metadata.json").read_text())
    spec = next(iter(metadata["network_data_format"]["inputs"].values()))
    return len(spec.get("spatial_shape") or [0, 0, 0])


def _is_meduhip(path: str | os.PathLike) -> bool:
    """Whether the bundle's network is MedUHIP's (served as an interactive model)."""
    try:
        config = json.loads((Path(path) / "configs" / "inference.json").read_text())
    except (OSError, ValueError):
        return False
    return str(config.get("network_def", {}).get("_target_", "")).endswith("MedUHIPNet")


def _image_kind(path_or_id: str) -> int:
    """2 for a 2D image file (PNG/JPEG), 3 otherwise."""
    return 2 if split_ext(os.path.basename(path_or_id))[1].lower() in _2D_EXTS else 3


class SafeLocalDatastore(LocalDatastore):
    """MONAI Label's ``LocalDatastore`` that refuses ids/tags that are not plain names and hides HECKTOR PETs.

    Every method that turns a client's id or tag into a path checks it first (:func:`check_name`, HTTP 400), so
    ``PUT /datastore/image?image=../x``, ``PUT /datastore/label?tag=../../x`` or ``DELETE /datastore/image?id=../x``
    write or delete nothing. Images named ``<Case>__PT`` are inputs beside their CT and never listed.
    """

    def add_image(self, image_id: str, image_filename: str, image_info: dict[str, Any]) -> str:
        if image_id:
            _safe(image_id, "image id")
        return super().add_image(image_id, image_filename, image_info)

    def remove_image(self, image_id: str) -> None:
        return super().remove_image(_safe(image_id, "image id"))

    def save_label(self, image_id: str, label_filename: str, label_tag: str, label_info: dict[str, Any]) -> str:
        return super().save_label(
            _safe(image_id, "image id"), label_filename, _safe(label_tag, "label tag"), label_info
        )

    def remove_label(self, label_id: str, label_tag: str) -> None:
        return super().remove_label(_safe(label_id, "label id"), _safe(label_tag, "label tag"))

    def get_image_uri(self, image_id: str) -> str:
        return super().get_image_uri(_safe(image_id, "image id"))

    def get_label_uri(self, label_id: str, label_tag: str) -> str:
        return super().get_label_uri(_safe(label_id, "label id"), _safe(label_tag, "label tag"))

    def get_image_info(self, image_id: str) -> dict[str, Any]:
        return super().get_image_info(_safe(image_id, "image id"))

    def update_image_info(self, image_id: str, info: dict[str, Any]) -> None:
        return super().update_image_info(_safe(image_id, "image id"), info)

    def get_label_info(self, label_id: str, label_tag: str) -> dict[str, Any]:
        return super().get_label_info(_safe(label_id, "label id"), _safe(label_tag, "label tag"))

    def update_label_info(self, label_id: str, label_tag: str, info: dict[str, Any]) -> None:
        return super().update_label_info(_safe(label_id, "label id"), _safe(label_tag, "label tag"), info)

    def list_images(self) -> list[str]:
        return [i for i in super().list_images() if not is_companion_pet(i)]

    def get_unlabeled_images(self, label_tag: str | None = None, labels: list[str] | None = None) -> list[str]:
        return [i for i in super().get_unlabeled_images(label_tag, labels) if not is_companion_pet(i)]

    def get_labeled_images(self, label_tag: str | None = None, labels: list[str] | None = None) -> list[str]:
        return [i for i in super().get_labeled_images(label_tag, labels) if not is_companion_pet(i)]

    def json(self) -> dict[str, Any]:
        out = super().json()
        out["objects"] = {k: v for k, v in out.get("objects", {}).items() if not is_companion_pet(k)}
        return out

    def datalist(self, full_path: bool = True) -> list[dict[str, Any]]:
        return [d for d in super().datalist(full_path) if not is_companion_pet(image_id_of(d["image"]))]


class _BundleWeights(BundleConstants):
    """MONAI Label's bundle constants, but the weights are ``<ckpt_dir>/model.pt`` of the bundle's own inference
    config (``models/model.pt`` for most bundles; ``models/<fusion>_<variant>/model.pt`` for a trained
    ``mcdropout_fusion_synthetic`` run), as the bundle's own inference loads them."""

    def __init__(self, task: LexuInferTask) -> None:
        self.task = task

    def model_pytorch(self) -> str:
        config = getattr(self.task, "bundle_config", None)
        if config is not None and "ckpt_dir" in config:
            try:
                ckpt = Path(config.get_parsed_content("ckpt_dir")) / "model.pt"
                return os.path.relpath(ckpt, Path(self.task.bundle_path) / "models")
            except Exception as e:  # noqa: BLE001 - any config error: MONAI Label's default place
                logger.warning("%s: ckpt_dir not usable (%s); weights from models/model.pt", self.task.bundle_path, e)
        return super().model_pytorch()


class LexuInferTask(BundleInferTask):
    """``BundleInferTask`` for a monai-lexu bundle: merged override configs, structures as labels, PET beside the CT,
    a label map + uncertainty summaries as the result (see the module docstring).

    Args:
        path: the bundle folder.
        conf: the app's ``--conf`` values.
        override_files: config files merged over ``configs/inference.json`` (e.g. ``configs/cpu_small.json``).
        kwargs: further ``BundleInferTask`` arguments (defaults here: ``post_filter=[SaveImaged]``,
            ``add_post_restore=False``, ``load_strict=True``), e.g. ``dropout``/``train_mode`` for MC-dropout scoring.
    """

    def __init__(self, path: str, conf: dict[str, str], override_files: Sequence[str] = (), **kwargs: Any) -> None:
        self._override_files = [str(f) for f in override_files]
        kwargs = {
            "post_filter": [SaveImaged],
            "add_post_restore": False,
            "load_strict": True,
            "const": _BundleWeights(self),
            **kwargs,
        }
        super().__init__(path, conf, **kwargs)
        if not self.valid:
            return
        self.name = os.path.basename(path)
        self.structures = [str(s) for s in self.bundle_config.get_parsed_content("structure_names")]
        if "label_values" in self.bundle_config:
            values = [int(v) for v in self.bundle_config.get_parsed_content("label_values")]
        else:
            values = list(range(1, len(self.structures) + 1))
        self.label_values = values
        self.labels = dict(zip(self.structures, values))
        self.dimension = _bundle_dimension(path)
        self.hecktor = "recipe" in self.bundle_config  # the PET/CT bundles read a preprocessing recipe

    def _load_bundle_config(self, path: str, config: str) -> ConfigParser:
        return _merged_parser(config, self._override_files, path)

    def info(self) -> dict[str, Any]:
        i = super().info()
        i["structures"] = list(self.structures)
        i["label_values"] = dict(self.labels)
        i["inputs"] = "HECKTOR CT id (<Case>__CT), PET <Case>__PT beside it" if self.hecktor else "one image"
        i["configs"] = ["inference.json"] + [os.path.basename(f) for f in self._override_files]
        return i

    def accepts(self, image_path: str) -> bool:
        """Whether this bundle serves the image file (3D ``__CT`` ids for HECKTOR, 2D files for 2D bundles)."""
        if _image_kind(image_path) != self.dimension:
            return False
        return not self.hecktor or split_ext(os.path.basename(image_path))[0].endswith(CT_SUFFIX)

    def model_ts(self) -> float:
        path = self.get_path()
        return os.path.getmtime(path) if path and os.path.exists(path) else 0.0

    def __call__(self, request: dict[str, Any], callbacks: Any = None) -> tuple[Any, dict[str, Any]]:
        request = dict(request)
        image = request.get("image")
        if self.hecktor and isinstance(image, str):
            try:
                pet = pet_path_for(image)
            except ValueError as e:
                raise RefusedRequest(400, f"{self.name}: {e}") from None
            if not pet.is_file():
                raise RefusedRequest(
                    404, f"{self.name}: no PET for {Path(image).name}: expected {pet.name} beside it (studies folder)"
                )
            request["ct"], request["pet"] = image, str(pet)
        return super().__call__(request, callbacks)

    def pre_transforms(self, data: Any = None) -> Sequence[Any]:
        self._update_device(data)
        pre = self.bundle_config.get_parsed_content("preprocessing", instantiate=True)
        return list(pre.transforms) if isinstance(pre, Compose) else list(pre)

    def post_transforms(self, data: Any = None) -> Sequence[Any]:
        self._update_device(data)
        post = self.bundle_config.get_parsed_content("postprocessing", instantiate=True)
        post = list(post.transforms) if isinstance(post, Compose) else list(post)
        return [*self._filter_transforms(post, self.post_filter), self._result]

    def _result(self, data: dict[str, Any]) -> dict[str, Any]:
        """Last post transform: label map, summaries, the maps for the writer."""
        from monai_lexu.transforms import ProbToLabelMap

        d = dict(data)
        prob, unc = d["prob"], d["unc"]
        label_map = d.get("label_map")
        if label_map is None:
            label_map = ProbToLabelMap(self.label_values)(prob)
        voxel = None
        if self.dimension == 3 and hasattr(prob, "affine"):
            affine = np.asarray(prob.affine, dtype=np.float64)
            voxel = float(abs(np.linalg.det(affine[:3, :3])))
        summary = uncertainty_summary(prob, unc, self.structures, voxel)
        d["pred"] = label_map
        d["result"] = {
            "model": self.name,
            "structures": summary,
            "uncertainty_total": total_uncertainty(summary),
            "label_values": dict(self.labels),
            "definitions": "uncertainty_sum/mean over the image per structure; volume and estimated_dice (Buddenkotte "
            "et al. 5.1) of the mask probability >= 0.5; see monai_lexu.label.summary",
        }
        return d

    def writer(self, data: dict[str, Any], extension: str | None = None, dtype: Any = None) -> tuple[str, dict]:
        """Label map -> ``.nii.gz`` (3D) or ``.png`` (2D), uint8 on the input grid; float maps -> ``.nii.gz``."""
        from monai.transforms import SaveImage

        def nifti(array: Any, path: str, out_dtype: Any) -> None:
            """Write ``(1, *S)`` as the bundles' ``SaveImaged(resample=False)`` does, to ``path``."""
            folder = tempfile.mkdtemp(dir=os.path.dirname(path))
            SaveImage(
                output_dir=folder,
                output_ext=".nii.gz",
                output_dtype=out_dtype,
                resample=False,
                separate_folder=False,
                print_log=False,
                squeeze_end_dims=self.dimension == 3,  # 2D: (W, H, 1, 1) on its 4x4 affine, as the bundles write
                output_name_formatter=lambda meta, saver: {"subject": "map", "idx": None},
            )(array)
            (written,) = Path(folder).glob("*.nii.gz")
            os.replace(written, path)
            os.rmdir(folder)

        label_map = data["pred"]
        result = copy.deepcopy(data.get("result", {}))
        # the label file: MONAI Label's endpoint removes it after sending; the maps' folder: LexuApp.infer removes it
        fd, label_path = tempfile.mkstemp(prefix="lexu_label_", suffix=".png" if self.dimension == 2 else ".nii.gz")
        os.close(fd)
        out_dir = tempfile.mkdtemp(prefix="lexu_maps_")
        if self.dimension == 2:
            from PIL import Image

            array = np.asarray(torch.as_tensor(label_map).detach().cpu()[0], dtype=np.uint8)
            Image.fromarray(np.ascontiguousarray(array.T)).save(label_path)  # (W, H) -> rows x columns
            result["label_file"] = {"format": "png", "dtype": "uint8"}
        else:
            nifti(label_map, label_path, np.uint8)
            result["label_file"] = {"format": "nifti", "dtype": "uint8"}
        files = {}
        for kind, key in (("probability", "prob"), ("uncertainty", "unc")):
            maps = data[key]
            for i, structure in enumerate(self.structures):
                path = os.path.join(out_dir, f"{kind}_{structure}.nii.gz")
                nifti(maps[i : i + 1], path, np.float32)
                files[map_tag(kind, structure)] = path
        result["_map_files"] = files
        return label_path, result


def _click_list(value: Any) -> list[list[float]]:
    """A request's ``foreground``/``background`` points: a list of ``[i0, i1]`` (or a JSON string of it)."""
    if isinstance(value, str):
        value = json.loads(value) if value.strip() else []
    points = [list(p) for p in (value or [])]
    if any(len(p) < 2 for p in points):
        raise RefusedRequest(400, f"clicks must be [i0, i1] points of the image, got {points}")
    return [[float(p[0]), float(p[1])] for p in points]


class MedUHIPInferTask(LexuInferTask):
    """Interactive model for a MedUHIP bundle (``meduhip_riga``): MONAI Label's click prompt drives the network.

    The request's ``foreground`` and ``background`` points (MONAI Label's DeepEdit-style parameters; each
    ``[i0, i1]``, an index of the image as MONAI loads it, i.e. the spatial axes of the stored file as MONAI's
    readers order them) are scaled to the network's input grid and given as prompt (foreground first). The answer is
    the refined mask ``P_soft`` (more than half of the ``N`` sample masks, Eq. 2) as the label map, the vote fraction
    and its variance ``f (1 - f)`` as the probability and uncertainty maps (the ``N``-sample uncertainty), the
    per-structure summary of the other models and ``result["clicks"]``: how many points of each kind were used.
    The sampling space adapts through the Mean-Variance Network (it reads the clicks); the mixture weights stay
    uniform, since a plain click request selects no candidate region (ours).
    """

    def __init__(self, path: str, conf: dict[str, str], override_files: Sequence[str] = (), **kwargs: Any) -> None:
        from monailabel.interfaces.tasks.infer_v2 import InferType

        super().__init__(path, conf, override_files, **kwargs)
        self.type = InferType.DEEPEDIT
        self.description = "MedUHIP: clicks refine the cup mask; N-sample uncertainty"

    def info(self) -> dict[str, Any]:
        i = super().info()
        i["interactive"] = "foreground/background points [i0, i1] of the image as MONAI loads it"
        return i

    def inferer(self, data: Any = None) -> Any:
        from monai_lexu.engines.meduhip import MedUHIPInferer

        fg = _click_list((data or {}).get("foreground"))
        bg = _click_list((data or {}).get("background"))
        self._clicks = {"foreground": len(fg), "background": len(bg)}
        if not fg and not bg:
            return MedUHIPInferer()
        image = data["image"]
        grid = [int(s) for s in image.shape[1:]]
        meta = getattr(image, "meta", {}) or {}
        original = [int(s) for s in np.asarray(meta.get("spatial_shape", grid)).tolist()]
        points = []
        for p in fg + bg:
            if not all(0 <= p[a] < original[a] for a in range(2)):
                raise RefusedRequest(400, f"{self.name}: click {p} is outside the image of size {original}")
            points.append([(p[a] + 0.5) * grid[a] / original[a] - 0.5 for a in range(2)])
        labels = [1.0] * len(fg) + [0.0] * len(bg)
        return MedUHIPInferer(torch.tensor([points], dtype=torch.float32), torch.tensor([labels]))

    def _result(self, data: dict[str, Any]) -> dict[str, Any]:
        d = dict(data)
        for key in ("prob", "unc"):  # the bundle drops the single structure's channel for its NIfTI writer
            if d[key].ndim == self.dimension:
                d[key] = d[key][None]
        prob = d["prob"]
        d["label_map"] = (torch.as_tensor(prob) > 0.5).to(torch.uint8) * int(self.label_values[0])
        out = super()._result(d)
        out["result"]["clicks"] = dict(getattr(self, "_clicks", {"foreground": 0, "background": 0}))
        out["result"]["definitions"] = (
            "label map: P_soft, more than half of the N sample masks (MedUHIP Eq. 2); probability: the fraction of the"
            " N masks; uncertainty: its variance f(1-f); uncertainty_sum/mean over the image; see "
            "monai_lexu.label.summary"
        )
        return out


class LexuTrainTask(BundleTrainTask):
    """``BundleTrainTask`` that trains a monai-lexu bundle from the raters' label tags.

    ``_fetch_datalist`` gives one item per image with at least one rater (``rater<k>`` tags, else ``final``):
    ``{"id", "image", "raters": [...]}``. HECKTOR images (``<Case>__CT`` + the PET beside it) are converted with the
    bundle's converter and the recipe of the served model first (cases with >= 2 raters and cases with one rater
    separately, as the converter's layouts want), so training starts from the raw files. The bundle's ``train.json``
    + the override configs run with ``datalist`` pointing at the work folder and a
    :class:`monai_lexu.label.record.RaterCountRecorder` that writes ``<work>/rater_counts.json``.

    Args:
        path: the bundle folder.
        conf: the app's ``--conf`` values.
        override_files: config files merged over ``configs/train.json``.
        work_dir: this task's work folder (wiped at every training).
    """

    def __init__(
        self, path: str, conf: dict[str, str], override_files: Sequence[str] = (), work_dir: str | os.PathLike = ""
    ) -> None:
        self._override_files = [str(f) for f in override_files]
        super().__init__(path, conf, load_strict=True)
        self.name = os.path.basename(path)
        self.work_dir = Path(work_dir or tempfile.mkdtemp(prefix="lexu_train_"))
        self._datalist_path = ""
        if self.valid:
            expr = str(self.bundle_config.config.get("datalist", ""))  # type: ignore[union-attr]
            self.hecktor = "hecktor" in expr
            self.dimension = _bundle_dimension(path)

    def _load_bundle_config(self, path: str, config: str) -> ConfigParser:
        return _merged_parser(config, self._override_files, path)

    def info(self) -> dict[str, Any]:
        i = super().info()
        i["raters"] = "label tags rater1..raterN of each image (final alone counts as one rater)"
        return i

    def _fetch_datalist(self, request: dict[str, Any], datastore: Any) -> list[dict[str, Any]]:
        if self.work_dir.exists():
            shutil.rmtree(self.work_dir)
        self.work_dir.mkdir(parents=True)
        cases = []
        for image_id in sorted(datastore.list_images()):
            path = datastore.get_image_uri(image_id)
            if _image_kind(path) != self.dimension:
                continue
            if self.hecktor and not image_id.endswith(CT_SUFFIX):
                continue
            tags = rater_tags(datastore.get_labels_by_image_id(image_id))
            if tags:
                cases.append((image_id, path, [datastore.get_label_uri(image_id, t) for t in tags], tags))
        logger.info("%s: training on %d images with raters: %s", self.name, len(cases), {c[0]: c[3] for c in cases})
        if not cases:
            raise RefusedRequest(
                400, f"{self.name}: no image has rater labels (label tags rater1..raterN or final); nothing to train on"
            )
        items = self._hecktor_items(cases) if self.hecktor else self._plain_items(cases)
        return items

    def _plain_items(self, cases: list[tuple[str, str, list[str], list[str]]]) -> list[dict[str, Any]]:
        items = [{"id": cid, "image": path, "raters": raters} for cid, path, raters, _ in cases]
        structures = self.bundle_config.get_parsed_content("structures") if "structures" in self.bundle_config else {}
        doc = {"name": f"{self.name} (MONAI Label datastore)", "structures": structures, "training": items}
        self._datalist_path = str(self.work_dir / "datalist.json")
        Path(self._datalist_path).write_text(json.dumps(doc, indent=2) + "\n")
        return items

    def _hecktor_items(self, cases: list[tuple[str, str, list[str], list[str]]]) -> list[dict[str, Any]]:
        from monai_lexu.data import load_multirater_datalist
        from monai_lexu.datasets.hecktor import convert_hecktor, load_model_recipe

        ckpt_dir = Path(self.bundle_path) / "models"
        recipe = load_model_recipe(ckpt_dir) if (ckpt_dir / "preprocessing.json").is_file() else None
        groups: dict[str, Path] = {}
        for cid, path, raters, tags in cases:
            group = "multi" if len(raters) >= 2 else "single"
            raw = self.work_dir / f"raw_{group}"
            groups[group] = raw
            case = cid[: -len(CT_SUFFIX)]
            images, labels = raw / "imagesTr", raw / "labelsTr"
            images.mkdir(parents=True, exist_ok=True)
            ext = split_ext(os.path.basename(path))[1]
            if ext not in (".nii.gz", ".nii"):
                raise RefusedRequest(400, f"{self.name}: {cid}{ext}: HECKTOR training reads NIfTI (.nii.gz, .nii)")
            os.symlink(path, images / f"{case}__CT{ext}")
            os.symlink(pet_path_for(path), images / f"{case}__PT{ext}")
            for tag, rater in zip(tags, raters):
                folder = labels / tag if group == "multi" else labels
                folder.mkdir(parents=True, exist_ok=True)
                os.symlink(rater, folder / f"{case}{split_ext(os.path.basename(rater))[1]}")
        items: list[dict[str, Any]] = []
        for group, raw in sorted(groups.items()):
            datalist = convert_hecktor(raw, self.work_dir / group, recipe=recipe, folds=1)
            self._datalist_path = self._datalist_path or str(datalist)
            items += load_multirater_datalist(datalist, "training")
        return items

    def _update_overrides(self, overrides: dict[str, Any]) -> dict[str, Any]:
        overrides["train#data"] = overrides[self.const.key_train_dataset_data()]
        val_key = self.const.key_validate_dataset_data()
        if val_key in overrides:
            if val_key in self.bundle_config:
                overrides["validate#data"] = overrides[val_key]
            else:  # a bundle without validation (mcdropout_fusion_synthetic): use val_split 0
                logger.warning("%s has no %s: the validation split is not used", self.name, val_key)
                overrides.pop(val_key)
        overrides["datalist"] = self._datalist_path
        recorder = {
            "_target_": "monai_lexu.label.record.RaterCountRecorder",
            "path": str(self.work_dir / "rater_counts.json"),
        }
        overrides["train#handlers"] = [*overrides[self.const.key_train_handlers()], recorder]
        return overrides

    def run_single_gpu(self, request: dict[str, Any], overrides: dict[str, Any]) -> None:
        import monai.bundle

        monai.bundle.run(
            run_id=request.get("run_id", "run"),
            init_id=None,
            final_id=None,
            meta_file=self.bundle_metadata_path,
            config_file=[self.bundle_config_path, *self._override_files],
            **overrides,
        )


class LexuUncertaintyScoring(ScoringMethod):
    """Summed uncertainty of every unlabeled image from ONE forward pass of a served bundle.

    For each unlabeled image (PETs are never listed) the first served bundle that accepts it (3D ``__CT`` ids for
    the PET/CT bundles, 2D files for the 2D bundles, in ``--bundles`` order; or the request's ``model``) runs its
    inference once (an image it cannot read is reported under ``refused``, the others are scored);
    ``image info[SCORE_KEY]`` gets ``{"model", "model_ts", "uncertainty_sum", "structures": {name: uncertainty_sum}}``.
    An image already scored by the same weights (same mtime) is skipped unless the request has ``"force": true``.
    """

    def __init__(self, infers: dict[str, LexuInferTask]) -> None:
        super().__init__("Summed model uncertainty per unlabeled image, one forward pass (monai-lexu bundles)")
        self.infers = infers

    def __call__(self, request: dict[str, Any], datastore: Any) -> dict[str, Any]:
        model = request.get("model")
        tasks = [t for n, t in self.infers.items() if not model or n == model]
        force = strtobool(str(request.get("force", "false")))
        scored, skipped, refused = {}, [], {}
        for image_id in sorted(datastore.get_unlabeled_images()):
            path = datastore.get_image_uri(image_id)
            task = next((t for t in tasks if t.accepts(path)), None)
            if task is None:
                continue
            previous = datastore.get_image_info(image_id).get(SCORE_KEY) or {}
            ts = task.model_ts()
            if not force and previous.get("model") == task.name and previous.get("model_ts") == ts:
                skipped.append(image_id)
                continue
            try:
                _, data = task({"image": path, "device": request.get("device", "cpu"), "skip_writer": True})
            except HTTPException as e:  # e.g. a HECKTOR CT without its PET: named, the others are scored
                logger.warning("%s: %s not scored: %s", SCORE_KEY, image_id, e.detail)
                refused[image_id] = str(e.detail)
                continue
            except Exception as e:  # noqa: BLE001 - e.g. an image of another 2D data set: named, the others go on
                logger.warning("%s: %s not scored by %s: %s: %s", SCORE_KEY, image_id, task.name, type(e).__name__, e)
                refused[image_id] = f"{task.name}: {type(e).__name__}: {e}"
                continue
            summary = data["result"]["structures"]
            score = {
                "model": task.name,
                "model_ts": ts,
                "uncertainty_sum": total_uncertainty(summary),
                "structures": {k: v["uncertainty_sum"] for k, v in summary.items()},
            }
            datastore.update_image_info(image_id, {SCORE_KEY: score})
            scored[image_id] = score["uncertainty_sum"]
        logger.info("%s: scored %s, up to date %s, refused %s", SCORE_KEY, scored, skipped, refused)
        return {"scored": scored, "up_to_date": skipped, "refused": refused}


class MostUncertain(Strategy):
    """Serve the unlabeled image with the largest stored summed uncertainty first (see
    :class:`LexuUncertaintyScoring`); the answer also holds the whole ``ranking`` (decreasing) and the images not
    scored yet. Request ``{"model": name}`` ranks only the images scored by that bundle."""

    def __init__(self) -> None:
        super().__init__("Most uncertain unlabeled image first (summed uncertainty of one forward pass)")

    def __call__(self, request: dict[str, Any], datastore: Any) -> dict[str, Any] | None:
        model = request.get("model")
        ranking, unscored = [], []
        for image_id in sorted(datastore.get_unlabeled_images()):
            score = datastore.get_image_info(image_id).get(SCORE_KEY)
            if not score:
                unscored.append(image_id)
            elif not model or score.get("model") == model:
                ranking.append({"id": image_id, "uncertainty_sum": score["uncertainty_sum"], "model": score["model"]})
        ranking.sort(key=lambda r: (-r["uncertainty_sum"], r["id"]))
        if not ranking:
            logger.info("%s: no scored unlabeled image (run POST /scoring/%s first)", SCORE_KEY, SCORE_KEY)
            return None
        return {**ranking[0], "ranking": ranking, "unscored": unscored}


class LexuApp(MONAILabelApp):
    """The app: ``--conf models a,b`` (bundle names), ``--conf bundle_dir DIR``, ``--conf config cpu_small``
    (override configs merged where the bundle has them), ``--conf work_dir DIR`` (training work folders, default
    ``<studies>/.monai_lexu``), ``--conf skip_trainers true``."""

    def __init__(self, app_dir: str, studies: str, conf: dict[str, str]) -> None:
        self.model_names = [m.strip() for m in conf.get("models", "").split(",") if m.strip()]
        if not self.model_names:
            raise ValueError("monai_lexu.label: no bundles to serve (--conf models lexu_hecktor,lexu_riga)")
        self.bundle_dir = Path(conf.get("bundle_dir") or "bundles").resolve()
        self.config_name = conf.get("config", "")
        self.work_dir = Path(conf.get("work_dir") or Path(studies) / ".monai_lexu")
        missing = [m for m in self.model_names if not (self.bundle_dir / m / "configs" / "metadata.json").is_file()]
        if missing:
            raise FileNotFoundError(f"monai_lexu.label: no bundle {missing} in {self.bundle_dir}")
        import monai_lexu

        super().__init__(
            app_dir=app_dir,
            studies=studies,
            conf=conf,
            name="monai-lexu",
            description="monai-lexu bundles: label map, per-structure uncertainty, uncertainty-first active learning",
            version=getattr(monai_lexu, "__version__", "0.1.0"),
        )

    def on_init_complete(self) -> None:
        """In the server (not in MONAI Label's train/scoring sub-processes): guard the upload endpoint too."""
        from monailabel.app import app

        install_upload_guard(app)
        super().on_init_complete()

    def _bundle(self, name: str) -> tuple[str, list[str]]:
        path = self.bundle_dir / name
        return str(path), _override_files(path, self.config_name)

    def init_datastore(self) -> SafeLocalDatastore:
        return SafeLocalDatastore(
            self.studies,
            extensions=settings.MONAI_LABEL_DATASTORE_FILE_EXT,
            auto_reload=settings.MONAI_LABEL_DATASTORE_AUTO_RELOAD,
            read_only=settings.MONAI_LABEL_DATASTORE_READ_ONLY,
        )

    def init_infers(self) -> dict[str, LexuInferTask]:
        infers = {}
        for name in self.model_names:
            path, overrides = self._bundle(name)
            task_class = MedUHIPInferTask if _is_meduhip(path) else LexuInferTask
            task = task_class(path, self.conf, overrides)
            if task.is_valid():
                infers[name] = task
            else:
                logger.warning("%s: not served (no models/model.pt); train it first", name)
        return infers

    def init_trainers(self) -> dict[str, LexuTrainTask]:
        if strtobool(self.conf.get("skip_trainers", "false")):
            return {}
        trainers = {}
        for name in self.model_names:
            path, overrides = self._bundle(name)
            task = LexuTrainTask(path, self.conf, overrides, self.work_dir / "train" / name)
            if task.is_valid():
                trainers[name] = task
        return trainers

    def init_scoring_methods(self) -> dict[str, ScoringMethod]:
        return {SCORE_KEY: LexuUncertaintyScoring(self._infers)}

    def init_strategies(self) -> dict[str, Strategy]:
        return {SCORE_KEY: MostUncertain(), "first": First(), "random": Random()}

    def infer(self, request: dict[str, Any], datastore: Any = None) -> dict[str, Any]:
        """Run a bundle on a datastore image id (or an uploaded file), store the float maps as label tags."""
        datastore = datastore if datastore else self.datastore()
        request = dict(request)
        image = request.get("image")
        image_id = None
        if isinstance(image, str) and not _is_upload(image):
            image_id = _safe(image, "image id")
            uri = datastore.get_image_uri(image_id)
            if not uri or not os.path.isfile(uri):
                raise RefusedRequest(404, f"image {image_id!r} is not in the studies folder")
            request["image"] = uri  # an existing path: MONAI Label then saves no label by itself
        tag = _safe(request.get("label_tag") or "original", "label tag")
        for key in ("model_filename",):  # a weights file of the bundle's models/ folder, by name
            if isinstance(request.get(key), str):
                _safe(request[key], key)
        result = super().infer(request, datastore)
        params = result.get("params") or {}
        files = params.pop("_map_files", {})
        maps = {}
        if image_id is not None:
            for map_name, path in files.items():
                datastore.save_label(image_id, path, map_name, {"model": request.get("model"), "kind": "float map"})
                maps[map_name] = f"/datastore/label?label={image_id}&tag={map_name}"
            if strtobool(str(request.get("save_label", "false"))) and result.get("file"):
                datastore.save_label(image_id, result["file"], tag, {"model": request.get("model")})
        for folder in {os.path.dirname(path) for path in files.values()}:
            shutil.rmtree(folder, ignore_errors=True)
        params["maps"] = maps
        result["params"] = params
        return result


async def api_add_image_checked(
    background_tasks: BackgroundTasks,
    image: str | None = None,
    params: str = Form("{}"),  # noqa: B008 (FastAPI's way of declaring a form field, as MONAI Label's endpoint)
    file: UploadFile = File(...),  # noqa: B008
    user: User = Depends(RBAC(settings.MONAI_LABEL_AUTH_ROLE_ANNOTATOR)),  # noqa: B008
) -> dict[str, Any]:
    """``PUT /datastore/image`` with the uploaded file name checked first (MONAI Label keeps only its base name; a
    name that points elsewhere, e.g. ``../../x.nii.gz``, is refused here instead of silently renamed)."""
    from monailabel.endpoints.datastore import add_image

    _safe(file.filename, "uploaded file name")
    return add_image(background_tasks, image, params, file, user.username)


def install_upload_guard(app: Any) -> None:
    """Put :func:`api_add_image_checked` in front of MONAI Label's own ``PUT /datastore/image`` (and its deprecated
    alias ``PUT /datastore/``); FastAPI matches routes in order, so the checked one answers."""
    from fastapi.routing import APIRoute

    for path in ("/datastore/image", "/datastore/"):
        route = APIRoute(settings.MONAI_LABEL_API_STR + path, api_add_image_checked, methods=["PUT"])
        app.router.routes.insert(0, route)


def _is_upload(image: str) -> bool:
    """Whether ``image`` is the temporary file MONAI Label's infer endpoint wrote for an uploaded ``file``."""
    path = Path(image)
    return path.is_absolute() and path.parent == Path(tempfile.gettempdir()) and path.name.startswith("tmp")
