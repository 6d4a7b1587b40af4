"""benchmarks/reproduce_tables.py: resumable runs and the calibrated-ensemble bundle's methods it can add."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _module():
    spec = importlib.util.spec_from_file_location("reproduce_tables", REPO / "benchmarks" / "reproduce_tables.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_stopped_training_resumes_from_its_checkpoint(tmp_path: Path) -> None:
    r = _module()
    assert r._resume(tmp_path) == {}
    (tmp_path / "checkpoint.pt").write_bytes(b"")
    assert r._resume(tmp_path) == {"resume": True}


def test_extra_methods_name_existing_configs_and_keys() -> None:
    r = _module()
    configs = REPO / "bundles" / r.CALIBRATED / "configs"
    for name, spec in r.RIGA_EXTRA.items():
        files = [f for stage, _ in spec["train"] for f in stage] + list(spec["evaluate"])
        assert all((configs / f).is_file() for f in files), name
        assert spec["stem"].startswith(r.CALIBRATED)
    evaluate = json.loads((configs / "evaluate.json").read_text())
    assert {k.split("#")[1] for k in r.RIGA_EXTRA["MCD"]["eval_overrides"]} <= set(evaluate["val_inferer"]) | {
        "mc_samples"
    }
    dropout = json.loads((configs / "dropout.json").read_text())
    assert r.RIGA_EXTRA["MCD"]["weights"] == "models/dropout/model.pt" and "dropout" in dropout["ckpt_dir"]
