"""The known-harmless Python warnings are filtered, others are not; the command printed back to the user."""

from __future__ import annotations

import configparser
import warnings
from pathlib import Path

from monai_lexu.handlers import KNOWN_HARMLESS_WARNINGS, bundle_command, quiet_known_warnings

REPO = Path(__file__).resolve().parents[2]


def _shown(message: str, module: str) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        quiet_known_warnings()
        warnings.warn_explicit(message, UserWarning, filename=module.replace(".", "/") + ".py", lineno=1, module=module)
    return [str(w.message) for w in caught]


def test_nvimgcodec_warning_filtered_others_kept():
    nv = "NvImgCodecPydicomReader: nvImageCodec decoder plugin did not register successfully. Falling back to default."
    assert _shown(nv, "monai.data.image_reader") == []
    assert _shown("something else went wrong", "monai.data.image_reader") == ["something else went wrong"]
    assert _shown(nv, "my_module") == [nv]  # only MONAI's own warning is filtered


def test_every_filter_documented():
    readme = (REPO / "bundles" / "README.md").read_text()
    for message, _category, _module, why in KNOWN_HARMLESS_WARNINGS:
        assert why
        assert message.split(":")[0] in readme


def test_logging_conf_levels_of_all_bundles():
    confs = sorted(REPO.glob("bundles/*/configs/logging.conf")) + sorted(
        REPO.glob("bundles/_base/*/configs/logging.conf")
    )
    assert len(confs) >= 9
    for conf in confs:
        parser = configparser.ConfigParser()
        parser.read(conf)
        levels = {parser[s]["qualname"]: parser[s]["level"] for s in parser.sections() if "qualname" in parser[s]}
        assert levels == {
            "monai.bundle.scripts": "WARNING",
            "monai.data.nvimgcodec_pydicom_plugin": "ERROR",
            "ignite.engine.engine.SupervisedTrainer": "WARNING",
            "ignite.engine.engine.SupervisedEvaluator": "WARNING",
            "ignite.engine.engine.GuardedInferenceEvaluator": "WARNING",
        }, conf
        assert parser["logger_root"]["level"] == "INFO"


def test_bundle_command_defaults_and_overrides(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    train = tmp_path / "bundles" / "b" / "configs" / "train.json"
    cpu = train.with_name("cpu_small.json")
    command = bundle_command(add_files=[cpu], overrides={"resume": True, "fold": 1}, default_files=[train])
    assert command == (
        "python -m monai.bundle run --config_file "
        "\"['bundles/b/configs/train.json','bundles/b/configs/cpu_small.json']\" --resume true --fold 1"
    )
    # a file already in the list is not repeated
    assert bundle_command(add_files=[train], default_files=[train]).count("train.json") == 1
