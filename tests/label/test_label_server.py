"""A real MONAI Label 0.8.5 server serving lexu_hecktor and lexu_riga (``python -m monai_lexu.label serve``).

Runs only where monailabel is installed (``make test-label`` builds ``.venv-label`` and runs it there); elsewhere the
module is skipped. The fixture trains both bundles for one epoch with their CPU recipe on tiny synthetic data in the
test's tmp folder, starts the server on 127.0.0.1 on a free port and stops it by PID at the end.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip(
    "monailabel",
    reason="MONAI Label 0.8.5 is not installed in this environment: `make test-label` builds .venv-label and runs "
    "these real-server tests there",
)

import nibabel as nib  # noqa: E402
import requests  # noqa: E402
from PIL import Image  # noqa: E402
from requests_toolbelt.multipart.decoder import MultipartDecoder  # noqa: E402

from monai_lexu.label.summary import total_uncertainty, uncertainty_summary  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
BUNDLES = ("lexu_hecktor", "lexu_riga", "mcdropout_fusion_synthetic")  # LEXU 3D, LEXU 2D, MC dropout 2D
TRAIN_ARGS = {
    "lexu_hecktor": ["--epochs", "1", "--synthetic_data#num_cases", "4", "--num_samples", "1"],
    "lexu_riga": [
        "--epochs",
        "1",
        "--batch_size",
        "4",
        "--synthetic_data#num_per_source",
        "{'BinRushed': 3, 'MESSIDOR': 3, 'Magrabia': 2}",
    ],
    "mcdropout_fusion_synthetic": ["--epochs", "1"],
}
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
TIMEOUT = 300


def _run(*args: str, cwd: Path) -> None:
    proc = subprocess.run([sys.executable, *args], cwd=cwd, env=ENV, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"{args}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"


def _bundle_run(root: Path, bundle: str, config: str, *args: str) -> None:
    configs = root / "bundles" / bundle / "configs"
    files = f"['{configs / config}','{configs / 'cpu_small.json'}']"
    _run("-m", "monai.bundle", "run", "--config_file", files, *args, cwd=root)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


class Server:
    def __init__(self, root: Path, studies: Path, url: str, proc: subprocess.Popen, log: Path) -> None:
        self.root, self.studies, self.url, self.proc, self.log = root, studies, url, proc, log

    def get(self, path: str, **kw: Any) -> requests.Response:
        return requests.get(self.url + path, timeout=TIMEOUT, **kw)

    def post(self, path: str, **kw: Any) -> requests.Response:
        return requests.post(self.url + path, timeout=TIMEOUT, **kw)

    def put(self, path: str, **kw: Any) -> requests.Response:
        return requests.put(self.url + path, timeout=TIMEOUT, **kw)

    def delete(self, path: str, **kw: Any) -> requests.Response:
        return requests.delete(self.url + path, timeout=TIMEOUT, **kw)

    def wait_task(self, kind: str) -> dict[str, Any]:
        """Poll ``GET /<kind>/`` (train, scoring) until the last task is no longer submitted or running."""
        deadline = time.time() + TIMEOUT
        while time.time() < deadline:
            status = self.get(f"/{kind}/").json()
            if status.get("status") not in ("SUBMITTED", "RUNNING"):
                return status
            time.sleep(2)
        raise AssertionError(f"{kind} still running after {TIMEOUT} s")

    def infer(self, model: str, image: str) -> tuple[dict[str, Any], str, bytes]:
        r = self.post(f"/infer/{model}", params={"image": image})
        assert r.status_code == 200, r.text
        params, name, content = {}, "", b""
        for part in MultipartDecoder.from_response(r).parts:
            disposition = part.headers[b"Content-Disposition"].decode()
            if 'name="params"' in disposition:
                params = json.loads(part.content)
            else:
                name, content = disposition.split('filename="')[1].rstrip('"'), part.content
        return params, name, content


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("label_server")
    for bundle in BUNDLES:
        shutil.copytree(
            REPO / "bundles" / bundle,
            root / "bundles" / bundle,
            ignore=shutil.ignore_patterns("models", "eval", "data", "runs"),
        )
        _bundle_run(root, bundle, "train.json", *TRAIN_ARGS[bundle])
        assert list((root / "bundles" / bundle / "models").glob("**/model.pt"))  # mcdropout: models/<run>/model.pt
    studies = root / "studies"
    studies.mkdir()
    raw = root / "bundles" / "lexu_hecktor" / "data" / "hecktor" / "raw" / "imagesTr"
    for case in ("SYN-001", "SYN-002", "SYN-003"):
        for modality in ("CT", "PT"):
            shutil.copy(raw / f"{case}__{modality}.nii.gz", studies)
    shutil.copy(raw / "SYN-004__CT.nii.gz", studies / "NOPET__CT.nii.gz")  # a CT whose PET is missing
    for name in ("BinRushed_001.png", "BinRushed_002.png"):
        shutil.copy(root / "bundles" / "lexu_riga" / "data" / "riga" / "images" / name, studies)
    jungo = root / "bundles" / "mcdropout_fusion_synthetic" / "data" / "jungo_64" / "images_unperturbed"
    shutil.copy(jungo / "jungo_000.png", studies)
    port = _free_port()
    log = root / "server.log"
    cmd = [sys.executable, "-m", "monai_lexu.label", "serve", "--studies", str(studies), "--bundles", ",".join(BUNDLES)]
    cmd += ["--bundle-dir", str(root / "bundles"), "--config", "cpu_small", "--port", str(port)]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=root, env=ENV, stdout=out, stderr=subprocess.STDOUT)
    srv = Server(root, studies, f"http://127.0.0.1:{port}", proc, log)
    try:
        deadline = time.time() + 180
        while True:
            assert proc.poll() is None, f"server exited {proc.returncode}:\n{log.read_text()[-4000:]}"
            try:
                if requests.get(srv.url + "/info/", timeout=5).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert time.time() < deadline, f"server not up after 180 s:\n{log.read_text()[-4000:]}"
            time.sleep(1)
        yield srv
    finally:
        os.kill(proc.pid, signal.SIGTERM)  # the serve process became the server: same PID
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)


def _own_inference(server: Server, bundle: str, image: str) -> dict[str, np.ndarray]:
    """The bundle's own inference (monai.bundle run inference.json + cpu_small.json) on one studies file."""
    out = server.root / f"own_{bundle}_{image}"
    _bundle_run(
        server.root, bundle, "inference.json", "--input_glob", str(server.studies / image), "--output_dir", str(out)
    )
    maps = {}
    for kind in ("prob", "unc"):
        (path,) = out.glob(f"*_{kind}.nii.gz")
        img = nib.load(path)
        data = np.asarray(img.dataobj, dtype=np.float32)
        maps[kind] = np.moveaxis(data.reshape(*data.shape[:3], -1), -1, 0)  # (L, X, Y, Z); 2D: Z = 1
        maps["affine"] = img.affine
    return maps


def _assert_summary_equal(served: dict[str, Any], own: dict[str, Any]) -> None:
    assert served.keys() == own.keys()
    for structure, values in own.items():
        for key, value in values.items():
            got = served[structure][key]
            if value is None:
                assert got is None, (structure, key)
            else:
                assert got == pytest.approx(value, rel=1e-5, abs=1e-5), (structure, key, got, value)


def test_info_lists_structures_not_heads(server: Server) -> None:
    info = server.get("/info/").json()
    assert info["labels"] == ["GTVp", "GTVn", "disc", "cup", "object"]
    assert info["models"]["mcdropout_fusion_synthetic"]["labels"] == {"object": 1}
    assert info["models"]["lexu_hecktor"]["labels"] == {"GTVp": 1, "GTVn": 2}
    assert info["models"]["lexu_riga"]["labels"] == {"disc": 1, "cup": 2}
    assert info["models"]["lexu_hecktor"]["dimension"] == 3 and info["models"]["lexu_riga"]["dimension"] == 2
    assert info["models"]["lexu_hecktor"]["configs"] == ["inference.json", "cpu_small.json"]
    assert "head" not in json.dumps(info["labels"]) + json.dumps([m["labels"] for m in info["models"].values()])
    assert "lexu_uncertainty" in info["strategies"] and "lexu_uncertainty" in info["scoring"]
    assert set(info["trainers"]) == set(BUNDLES)


def test_infer_hecktor_label_map_summaries_and_maps(server: Server) -> None:
    params, name, content = server.infer("lexu_hecktor", "SYN-001__CT")
    assert name.endswith(".nii.gz")
    (server.root / "served_label.nii.gz").write_bytes(content)
    label = nib.load(server.root / "served_label.nii.gz")
    ct = nib.load(server.studies / "SYN-001__CT.nii.gz")
    assert label.shape == ct.shape and np.allclose(label.affine, ct.affine, atol=1e-4)
    assert label.get_data_dtype() == np.uint8
    assert set(np.unique(np.asarray(label.dataobj)).tolist()) <= {0, 1, 2}
    assert params["label_names"] == {"GTVp": 1, "GTVn": 2} and params["label_file"] == {
        "format": "nifti",
        "dtype": "uint8",
    }

    own = _own_inference(server, "lexu_hecktor", "SYN-001__CT.nii.gz")
    voxel = float(abs(np.linalg.det(own["affine"][:3, :3])))
    expected = uncertainty_summary(own["prob"], own["unc"], ["GTVp", "GTVn"], voxel)
    _assert_summary_equal(params["structures"], expected)
    assert params["uncertainty_total"] == pytest.approx(total_uncertainty(expected), rel=1e-5)

    for i, structure in enumerate(("GTVp", "GTVn")):
        url = params["maps"][f"uncertainty_{structure}"]
        assert url == f"/datastore/label?label=SYN-001__CT&tag=uncertainty_{structure}"
        r = server.get(url)
        assert r.status_code == 200
        path = server.root / f"unc_{structure}.nii.gz"
        path.write_bytes(r.content)
        served = np.asarray(nib.load(path).dataobj, dtype=np.float32)
        assert served.shape == ct.shape
        np.testing.assert_allclose(served, own["unc"][i], atol=1e-5)
        assert server.get(params["maps"][f"probability_{structure}"]).status_code == 200


def test_infer_riga_png_label_and_summaries(server: Server) -> None:
    params, name, content = server.infer("lexu_riga", "BinRushed_001")
    assert name.endswith(".png")
    (server.root / "served_label.png").write_bytes(content)
    label, image = Image.open(server.root / "served_label.png"), Image.open(server.studies / "BinRushed_001.png")
    assert label.size == image.size and label.mode == "L"  # uint8, one value per pixel of the input grid
    assert params["label_file"] == {"format": "png", "dtype": "uint8"}
    own = _own_inference(server, "lexu_riga", "BinRushed_001.png")
    expected = uncertainty_summary(own["prob"], own["unc"], ["disc", "cup"], None)
    _assert_summary_equal(params["structures"], expected)
    r = server.get(params["maps"]["uncertainty_cup"])
    assert r.status_code == 200
    (server.root / "unc_cup.nii.gz").write_bytes(r.content)
    served = np.asarray(nib.load(server.root / "unc_cup.nii.gz").dataobj, dtype=np.float32)
    np.testing.assert_allclose(served.reshape(own["unc"][1].shape), own["unc"][1], atol=1e-5)


def test_mc_dropout_bundle_served_through_the_same_contract(server: Server) -> None:
    params, name, content = server.infer("mcdropout_fusion_synthetic", "jungo_000")
    assert name.endswith(".png") and params["label_names"] == {"object": 1}
    (server.root / "served_jungo.png").write_bytes(content)
    label, image = Image.open(server.root / "served_jungo.png"), Image.open(server.studies / "jungo_000.png")
    assert label.size == image.size and label.mode == "L"
    assert params["structures"]["object"]["uncertainty_sum"] > 0 and "uncertainty_object" in params["maps"]


def test_pet_is_found_by_name_and_never_listed(server: Server) -> None:
    r = server.post("/infer/lexu_hecktor", params={"image": "NOPET__CT"})
    assert r.status_code == 404 and "NOPET__PT.nii.gz" in r.json()["detail"]
    r = server.post("/infer/lexu_hecktor", params={"image": "BinRushed_001"})
    assert r.status_code == 400 and "<Case>__CT" in r.json()["detail"]
    objects = server.get("/datastore/", params={"output": "all"}).json()["objects"]
    assert "SYN-001__CT" in objects and not [i for i in objects if i.endswith("__PT")]
    for strategy in ("random", "first", "random", "random"):
        r = server.post(f"/activelearning/{strategy}", json={})
        assert r.status_code == 200 and not r.json()["id"].endswith("__PT")


def test_refused_paths_write_and_delete_nothing_outside(server: Server, tmp_path: Path) -> None:
    sentinel = server.root / "sentinel.nii.gz"
    sentinel.write_bytes(b"keep me")
    upload = tmp_path / "x.nii.gz"
    upload.write_bytes(b"not an image")
    before = _files(server.root)
    requests_made = [
        server.put("/datastore/image", params={"image": "../evil"}, files={"file": upload.open("rb")}),
        server.put("/datastore/image", files={"file": ("../../evil.nii.gz", upload.read_bytes())}),
        server.put(
            "/datastore/label", params={"image": "SYN-001__CT", "tag": "../../evil"}, files={"label": upload.open("rb")}
        ),
        server.put(
            "/datastore/label", params={"image": "../sentinel", "tag": "final"}, files={"label": upload.open("rb")}
        ),
        server.delete("/datastore/image", params={"id": "../sentinel"}),
        server.delete("/datastore/label", params={"id": "SYN-001__CT", "tag": "../../sentinel"}),
        server.get("/datastore/image", params={"image": "../sentinel"}),
        server.post("/infer/lexu_hecktor", params={"image": "../studies/SYN-001__CT"}),
        server.post("/infer/lexu_hecktor", params={"image": str(server.studies / "SYN-001__CT.nii.gz")}),
    ]
    for r in requests_made:
        assert 400 <= r.status_code < 500, (r.request.method, r.request.url, r.status_code, r.text)
        assert "refused" in r.json()["detail"]
    assert sentinel.read_bytes() == b"keep me"
    assert _files(server.root) == before


def test_single_pass_scoring_ranks_ct_ids_by_summed_uncertainty(server: Server) -> None:
    assert server.post("/scoring/lexu_uncertainty", json={}).status_code == 200
    status = server.wait_task("scoring")
    assert status["status"] == "DONE", status
    r = server.post("/activelearning/lexu_uncertainty", json={"model": "lexu_hecktor"})
    assert r.status_code == 200
    answer = r.json()
    ranking = answer["ranking"]
    assert {x["id"] for x in ranking} == {"SYN-001__CT", "SYN-002__CT", "SYN-003__CT"}
    assert answer["id"] == ranking[0]["id"] and "NOPET__CT" in answer["unscored"]
    sums = [x["uncertainty_sum"] for x in ranking]
    assert sums == sorted(sums, reverse=True)
    for entry in ranking:  # the stored score is the summed uncertainty of the served inference
        params, _, _ = server.infer("lexu_hecktor", entry["id"])
        assert entry["uncertainty_sum"] == pytest.approx(params["uncertainty_total"], rel=1e-5)
    riga = server.post("/activelearning/lexu_uncertainty", json={"model": "lexu_riga"}).json()
    assert {x["id"] for x in riga["ranking"]} == {"BinRushed_001", "BinRushed_002"}
    assert "jungo_000" in riga["unscored"]  # a grey image lexu_riga (first 2D bundle) cannot read: named, not scored


def test_training_from_rater_tags_reaches_the_loss(server: Server) -> None:
    labels = server.root / "bundles" / "lexu_hecktor" / "data" / "hecktor" / "raw" / "labelsTr"
    available = {c: sorted(labels.glob(f"*/{c}.nii.gz")) for c in ("SYN-001", "SYN-002", "SYN-003")}
    by_count = sorted(available, key=lambda c: (-len(available[c]), c))  # the synthetic set has 2-4 raters a case
    wanted = {by_count[0]: min(3, len(available[by_count[0]])), by_count[1]: 2, by_count[2]: 1}
    uploads = {  # rater1..raterN tags; the case with one rater gets only a `final` label
        f"{case}__CT": (
            {"final": available[case][0]}
            if n == 1
            else {f"rater{k + 1}": path for k, path in enumerate(available[case][:n])}
        )
        for case, n in wanted.items()
    }
    for image, tags in uploads.items():
        for tag, path in tags.items():
            r = server.put("/datastore/label", params={"image": image, "tag": tag}, files={"label": path.open("rb")})
            assert r.status_code == 200, r.text
            assert (server.studies / "labels" / tag / f"{image}.nii.gz").read_bytes() == path.read_bytes()
    weights = server.root / "bundles" / "lexu_hecktor" / "models" / "model.pt"
    before = weights.stat().st_mtime_ns
    r = server.post("/train/lexu_hecktor", json={"max_epochs": 1, "val_split": 0.0, "device": "cpu"})
    assert r.status_code == 200, r.text
    status = server.wait_task("train")
    assert status["status"] == "DONE", "\n".join(status.get("details", [])[-40:])
    record = json.loads((server.studies / ".monai_lexu" / "train" / "lexu_hecktor" / "rater_counts.json").read_text())
    assert record["distinct"] == sorted(set(wanted.values())) and record["iterations"] >= 1
    assert weights.stat().st_mtime_ns > before
