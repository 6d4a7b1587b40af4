"""MedUHIP as an interactive model of a real MONAI Label 0.8.5 server (``python -m monai_lexu.label serve``).

Runs only where monailabel is installed (``make test-label`` runs tests/label in ``.venv-label``). The fixture trains
meduhip_riga with its CPU recipe on a small synthetic RIGA-like set, serves it on 127.0.0.1 (free port) and stops
the server by PID. The test plays a clinician on one held-out image: no click first, then three rounds, each adding
a click at the centre of the largest error region of the last answer (labelled by the target: the majority of the
six raters' cups), and checks that the Dice of the returned mask to the target rises.
"""

from __future__ import annotations

import io
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

import numpy as np
import pytest

pytest.importorskip(
    "monailabel",
    reason="MONAI Label 0.8.5 is not installed in this environment: `make test-label` builds .venv-label and runs "
    "these real-server tests there",
)

import requests  # noqa: E402
from PIL import Image  # noqa: E402
from requests_toolbelt.multipart.decoder import MultipartDecoder  # noqa: E402

from monai_lexu.interactive import last_wrong_click  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
BUNDLE = "meduhip_riga"
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
TIMEOUT = 300
TRAIN_ARGS = [
    "--epochs",
    "25",
    "--synthetic_data",
    "{'num_per_source': {'BinRushed': 12, 'MESSIDOR': 12, 'Magrabia': 3}, 'size': 64, 'seed': 5}",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a > 0, b > 0
    total = a.sum() + b.sum()
    return 1.0 if total == 0 else float(2 * (a & b).sum() / total)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    root = tmp_path_factory.mktemp("label_meduhip")
    shutil.copytree(
        REPO / "bundles" / BUNDLE, root / "bundles" / BUNDLE, ignore=shutil.ignore_patterns("models", "eval", "data")
    )
    configs = root / "bundles" / BUNDLE / "configs"
    files = f"['{configs / 'train.json'}','{configs / 'cpu_small.json'}']"
    proc = subprocess.run(
        [sys.executable, "-m", "monai.bundle", "run", "--config_file", files, *TRAIN_ARGS],
        cwd=root, env=ENV, capture_output=True, text=True, timeout=1200,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = root / "bundles" / BUNDLE / "data" / "riga"
    case = json.loads((data / "datalist.json").read_text())["test"][0]
    studies = root / "studies"
    studies.mkdir()
    image_name = Path(case["image"]).name
    shutil.copy(data / case["image"] if not os.path.isabs(case["image"]) else case["image"], studies / image_name)
    cups = []
    for rater in case["raters"]:
        mask = np.asarray(Image.open(rater if os.path.isabs(rater) else data / rater))
        cups.append(mask == 255)  # RIGA mask values: 255 cup, 150 rim
    target = (np.sum(cups, axis=0) * 2 > len(cups)).astype(np.uint8)  # rows x columns, as PIL reads the PNG
    port = _free_port()
    log = root / "server.log"
    cmd = [sys.executable, "-m", "monai_lexu.label", "serve", "--studies", str(studies), "--bundles", BUNDLE]
    cmd += ["--bundle-dir", str(root / "bundles"), "--config", "cpu_small", "--port", str(port)]
    with open(log, "wb") as out:
        server = subprocess.Popen(cmd, cwd=root, env=ENV, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 180
        while True:
            assert server.poll() is None, f"server exited {server.returncode}:\n{log.read_text()[-4000:]}"
            try:
                if requests.get(url + "/info/", timeout=5).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert time.time() < deadline, f"server not up after 180 s:\n{log.read_text()[-4000:]}"
            time.sleep(1)
        yield {"url": url, "image": Path(image_name).stem, "target": target, "log": log}
    finally:
        os.kill(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.kill(server.pid, signal.SIGKILL)
            server.wait(timeout=30)


def _infer(served: dict, foreground: list, background: list) -> tuple[dict, np.ndarray]:
    params = {"foreground": foreground, "background": background}
    r = requests.post(
        f"{served['url']}/infer/{BUNDLE}", params={"image": served["image"]}, data={"params": json.dumps(params)},
        timeout=TIMEOUT,
    )  # fmt: skip
    assert r.status_code == 200, r.text
    result, mask = {}, None
    for part in MultipartDecoder.from_response(r).parts:
        if 'name="params"' in part.headers[b"Content-Disposition"].decode():
            result = json.loads(part.content)
        else:
            mask = np.asarray(Image.open(io.BytesIO(part.content)))
    assert mask is not None
    return result, mask


def test_info_lists_an_interactive_model(served):
    info = requests.get(served["url"] + "/info/", timeout=TIMEOUT).json()
    model = info["models"][BUNDLE]
    assert model["type"] == "deepedit" and model["labels"] == {"cup": 1} and model["dimension"] == 2


def test_three_rounds_of_clicks_raise_the_dice(served):
    target = served["target"]
    assert target.sum() > 0
    foreground, background = [], []
    result, mask = _infer(served, foreground, background)
    assert mask.shape == target.shape and set(np.unique(mask)) <= {0, 1}
    assert result["clicks"] == {"foreground": 0, "background": 0}
    assert result["structures"]["cup"]["uncertainty_sum"] >= 0  # the N-sample uncertainty
    dice = [_dice(mask, target)]
    clicked = []
    for _ in range(3):
        click = last_wrong_click(mask, target, clicked)
        assert click is not None, f"nothing left to correct after {len(clicked)} clicks (Dice {dice})"
        row, col, label = click
        clicked.append((row, col))
        (foreground if label else background).append([col, row])  # MONAI's PNG index order: [column, row]
        result, mask = _infer(served, foreground, background)
        assert result["clicks"] == {"foreground": len(foreground), "background": len(background)}
        dice.append(_dice(mask, target))
    print(f"meduhip_riga over MONAI Label: Dice after 0..3 clicks {[round(d, 4) for d in dice]}")
    assert dice[3] > dice[0], f"Dice after 0..3 clicks: {dice}"
    bad = requests.post(
        f"{served['url']}/infer/{BUNDLE}", params={"image": served["image"]},
        data={"params": json.dumps({"foreground": [[10_000, 3]]})}, timeout=TIMEOUT,
    )  # fmt: skip
    assert bad.status_code == 400 and "outside the image" in bad.text
