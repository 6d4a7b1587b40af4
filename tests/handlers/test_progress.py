"""RunSummary, TrainingProgress and CaseProgress on real ignite engines: the summary's content, the GPU-recipe-on-CPU
warning, the patch check, the ETA line's format and the per-case lines (values and formats, no timing)."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from ignite.engine import Engine, Events

from monai_lexu.handlers import (
    CaseProgress,
    RunSummary,
    TrainingProgress,
    format_duration,
    volumes_smaller_than_patch,
)
from monai_lexu.handlers.progress import case_label

LOGGER = "monai_lexu.handlers.progress"
ETA_LINE = re.compile(
    r"^training: epoch \d+/\d+, iteration \d+/\d+, loss \d+\.\d{4} \(seg \d+\.\d{4}, dgm \d+\.\d{4}\), "
    r"\d+\.\d{2} s/it, ETA \d+:\d{2}:\d{2}( \+ \d+ validations?)?$"
)


def _engine(steps: int = 3, epochs: int = 2) -> Engine:
    def step(engine, batch):
        return {"loss": torch.tensor(0.5 + batch)}

    engine = Engine(step)
    engine.data_loader = torch.utils.data.DataLoader(list(range(steps)), batch_size=1, num_workers=0)
    engine.state_data = list(range(steps))
    engine.max_epochs_wanted = epochs
    return engine


def _run(engine: Engine) -> None:
    engine.run(engine.state_data, max_epochs=engine.max_epochs_wanted)


def _messages(caplog, level=logging.INFO) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelno == level]


def _synthetic_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    (folder / "raw").mkdir(parents=True)
    (folder / "raw" / "SYNTHETIC_DATA.txt").write_text("fake\n")
    (folder / "datalist.json").write_text("{}")
    return folder


def test_summary_content(tmp_path, caplog):
    folder = _synthetic_folder(tmp_path)
    engine = _engine(steps=3, epochs=2)
    RunSummary(
        mode="training",
        bundle="lexu_test",
        device="cpu",
        dataset_dir=folder / "datalist.json",
        splits={"training": 6, "validation": 3},
        details={"fold": "0 of 3"},
        recipe="features [8, 16]",
        compute_recipe="cpu_small",
        val_interval=25,
        patch_size=[32, 32, 32],
    ).attach(engine)
    with caplog.at_level(logging.INFO, logger=LOGGER):
        _run(engine)
    summaries = [m for m in _messages(caplog) if "start-up summary" in m]
    assert len(summaries) == 1  # once, not per epoch
    text = summaries[0]
    assert text.startswith("lexu_test training: start-up summary")
    assert "device       cpu (" in text and "0 loader workers" in text
    assert f"data         {folder}: SYNTHETIC" in text
    assert "cases        6 training, 3 validation" in text
    assert "fold         0 of 3" in text
    assert "recipe       cpu_small: patch 32x32x32, features [8, 16]" in text
    assert "schedule     2 epochs x 3 steps = 6 steps; validation every 25 epochs" in text
    assert not _messages(caplog, logging.WARNING)  # CPU recipe on a CPU: no warning


def test_summary_real_data_is_not_called_synthetic(tmp_path, caplog):
    engine = _engine()
    RunSummary(mode="evaluation", device="cpu", dataset_dir=tmp_path, compute_recipe="cpu_small").attach(engine)
    with caplog.at_level(logging.INFO, logger=LOGGER):
        _run(engine)
    assert f"{tmp_path}: no synthetic-data marker (real data)" in _messages(caplog)[0]
    assert "schedule     3 cases, one line each" in _messages(caplog)[0]


def test_gpu_recipe_on_cpu_warning(tmp_path, caplog):
    cpu_config = tmp_path / "bundle" / "configs" / "cpu_small.json"
    engine = _engine(steps=3, epochs=100)
    engine.add_event_handler(Events.ITERATION_COMPLETED(once=4), lambda e: e.terminate())
    RunSummary(
        mode="training",
        device=torch.device("cpu"),
        compute_recipe="gpu",
        cpu_config=cpu_config,
        cpu_seconds_per_step=40,
        val_interval=10,
        estimate_after=3,
    ).attach(engine)
    with caplog.at_level(logging.INFO, logger=LOGGER):
        _run(engine)
    warnings = _messages(caplog, logging.WARNING)
    assert len(warnings) == 2  # at start (measured figure), after 3 steps (this machine)
    first, measured = warnings
    assert first.startswith(
        "the GPU recipe is running on a CPU: 40.0 s per step (measured on a 2-core CPU) x 300 steps = about 3.3 hours "
        'plus validations; for a CPU-sized run use: python -m monai.bundle run --config_file "['
    )
    assert f"'{cpu_config}']\"" in first  # the override file, in the printed command
    assert (
        "(measured on this machine) x 297 steps" in measured
    )  # the steps still to go and "cpu_small.json" in measured


def test_gpu_recipe_on_gpu_or_cpu_recipe_gives_no_warning(caplog):
    for device, recipe in (("cuda:0", "gpu"), ("cpu", "cpu_small")):
        summary = RunSummary(device=device, compute_recipe=recipe)
        assert not summary.gpu_recipe_on_cpu()
    assert RunSummary(device="cpu", compute_recipe="gpu").gpu_recipe_on_cpu()


def _nifti(path: Path, shape) -> str:
    nib.save(nib.Nifti1Image(np.zeros(shape, np.float32), np.eye(4)), str(path))
    return str(path)


def test_volumes_smaller_than_patch_are_named(tmp_path, caplog):
    data = [
        {"id": "small", "image": [_nifti(tmp_path / "a.nii.gz", (48, 48, 64)), "ignored.nii.gz"]},
        {"id": "big", "image": [_nifti(tmp_path / "b.nii.gz", (96, 100, 120))]},
        {"id": "png", "image": str(tmp_path / "c.png")},
    ]
    assert volumes_smaller_than_patch(data, [96, 96, 96]) == [("small", (48, 48, 64))]
    engine = _engine()
    RunSummary(
        device="cpu", compute_recipe="gpu", data=data, patch_size=[96, 96, 96], cpu_config="cpu_small.json"
    ).attach(engine)
    with caplog.at_level(logging.INFO, logger=LOGGER):
        _run(engine)
    patch_warning = [m for m in _messages(caplog, logging.WARNING) if "smaller than the patch" in m]
    assert patch_warning == [
        "1 of 3 volumes are smaller than the patch 96x96x96 (small 48x48x64): every patch is zero-padded to 96x96x96, "
        "so at least 83% of each step is padding and costs as much as real voxels. Use a patch that fits "
        "(--patch_size); the CPU recipe cpu_small.json fits them."
    ]


def test_training_progress_line_format(caplog):
    engine = _engine(steps=4, epochs=3)

    class Terms:
        last_terms = {"seg": torch.tensor(0.25), "dgm": 0.125}

    from monai_lexu.handlers import loss_terms_output

    progress = TrainingProgress(every=2, output_transform=loss_terms_output(Terms()))
    progress.attach(engine)
    with caplog.at_level(logging.INFO, logger=LOGGER):
        _run(engine)
    lines = [m for m in _messages(caplog) if m.startswith("training: epoch")]
    # the first iteration, every 2nd, the last (max_silence may add lines on a slow machine, never remove them)
    iterations = [int(re.search(r"iteration (\d+)/12", m).group(1)) for m in lines]
    assert {1, 2, 4, 6, 8, 10, 12} <= set(iterations)
    for line in lines:
        assert ETA_LINE.match(line), line
    assert lines[0].startswith("training: epoch 1/3, iteration 1/12, loss 0.5000 (seg 0.2500, dgm 0.1250), ")
    assert lines[-1].endswith("ETA 0:00:00")
    assert re.match(r"^training finished: 12 iterations in \d+:\d{2}:\d{2} \(\d+\.\d{2} s/it\)$", _messages(caplog)[-1])


def test_training_progress_counts_validations():
    validator = Engine(lambda e, b: None)
    trainer = _engine(steps=2, epochs=10)
    progress = TrainingProgress(validator=validator, val_interval=4)
    progress.attach(trainer)
    trainer.state.max_epochs, trainer.state.epoch_length = 10, 2
    trainer.state.epoch, trainer.state.iteration = 4, 8  # last step of epoch 4: its validation is still to come
    assert progress.remaining_validations(trainer) == 2  # epochs 4 and 8
    trainer.state.epoch, trainer.state.iteration = 5, 9
    assert progress.remaining_validations(trainer) == 1
    assert TrainingProgress().remaining_validations(trainer) == 0


def test_case_progress_lines_and_written_files(tmp_path, caplog):
    out = tmp_path / "eval"
    out.mkdir()
    (out / "old.csv").write_text("x")
    import os

    os.utime(out / "old.csv", (0, 0))

    def step(engine, batch):
        if engine.state.iteration == 2:
            (out / "metrics.csv").write_text("y")
        return {}

    engine = Engine(step)
    engine.add_event_handler(Events.ITERATION_STARTED, lambda e: None)
    CaseProgress(name="evaluation", output_dir=out).attach(engine)
    batches = [[{"id": "SYN-001"}], [{"id": "SYN-002"}], {"id": ["SYN-003"]}]
    with caplog.at_level(logging.INFO, logger=LOGGER):
        engine.run(batches, max_epochs=1)
    lines = _messages(caplog)
    assert [re.sub(r"\(.*\)$", "(...)", m) for m in lines[:3]] == [
        "evaluation: case 1/3 SYN-001 done (...)",
        "evaluation: case 2/3 SYN-002 done (...)",
        "evaluation: case 3/3 SYN-003 done (...)",
    ]
    assert re.search(r"\(\d+\.\d s; ETA \d+:\d{2}:\d{2}\)$", lines[0])
    assert re.match(r"^evaluation: 3 cases in \d+:\d{2}:\d{2} \(\d+\.\d s/case\)$", lines[3])
    assert lines[4] == f"evaluation wrote 1 files to {out}: metrics.csv"  # not old.csv


def test_case_label_of_guarded_inference():
    engine = Engine(lambda e, b: None)
    engine.last_case = {"input": {"ct": "/in/x__CT.nii.gz", "pet": "/in/x__PT.nii.gz"}, "files": ["a", "b", "c"]}
    assert case_label(engine) == "x__CT.nii.gz: 3 files written"
    engine.last_case = {"input": {"ct": "/in/y__CT.nii.gz"}, "error": "pet file /in/y__PT.nii.gz does not exist"}
    assert case_label(engine) == "y__CT.nii.gz: FAILED (pet file /in/y__PT.nii.gz does not exist)"


@pytest.mark.parametrize(
    "seconds, text",
    [
        (None, "?"),
        (float("nan"), "?"),
        (0.4, "0:00:00"),
        (61, "0:01:01"),
        (9 * 3600 + 5, "9:00:05"),
        (90061, "1 day, 1:01:01"),
    ],
)
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text
