"""Ctrl-C (a real SIGINT in a subprocess) stops a training cleanly: one line naming the saved checkpoint and its epoch
and the --resume command, exit code 130, no traceback, and nothing written from the interrupted state."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch


def _sigint_as_in_a_terminal() -> None:
    """Run in the child before exec: SIGINT to its default, so Python installs its KeyboardInterrupt handler even when
    the test run itself ignores SIGINT (a background job of a non-interactive shell, e.g. ``make test &``)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


SCRIPT = textwrap.dedent("""
    import logging, os, signal, sys
    import torch
    from ignite.engine import Engine, Events
    from monai.handlers import StatsHandler
    from monai_lexu.handlers import FiniteCheckpointSaver, ResumableCheckpoint, StopOnInterrupt

    logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(name)s %(levelname)s %(message)s")
    where, out = sys.argv[1], sys.argv[2]
    net = torch.nn.Linear(2, 1)

    def val_step(engine, batch):
        if where == "validation" and trainer.state.epoch == 2:
            os.kill(os.getpid(), signal.SIGINT)  # a real SIGINT, as Ctrl-C sends it
        return {}

    def step(engine, batch):
        if where == "training" and engine.state.iteration == 7:
            os.kill(os.getpid(), signal.SIGINT)
        return {"loss": torch.tensor(1.0)}

    validator = Engine(val_step)
    StatsHandler(iteration_log=False).attach(validator)
    trainer = Engine(step)
    trainer.add_event_handler(Events.EPOCH_COMPLETED, lambda e: validator.run([0, 1]))
    for handler in (
        StatsHandler(name=None, output_transform=lambda o: o["loss"]),
        ResumableCheckpoint(save_dir=out, save_dict={"model": net}, interval=1),
        FiniteCheckpointSaver(save_dir=out, save_dict={"model": net}, save_final=True, final_filename="model.pt"),
        StopOnInterrupt(mode="training", validator=validator),  # attached last, runs first
    ):
        handler.attach(trainer)
    trainer.run(range(4), max_epochs=5)
    print("NOT INTERRUPTED")
    """)


@pytest.mark.parametrize("where, epoch, done", [("training", 2, 6), ("validation", 2, 8)])
def test_ctrl_c_stops_with_one_line(tmp_path, where, epoch, done):
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    out = tmp_path / "models"
    result = subprocess.run(
        [sys.executable, str(script), where, str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        preexec_fn=_sigint_as_in_a_terminal,
    )
    text = result.stdout + result.stderr
    assert result.returncode == 130, text
    assert "Traceback" not in text and "NOT INTERRUPTED" not in text
    assert "terminating due to exception" not in text  # ignite's line for the interrupt is dropped
    lines = [line for line in text.splitlines() if "interrupted" in line]
    assert len(lines) == 1, text
    assert lines[0].startswith(
        f"monai_lexu.handlers.interrupt WARNING training interrupted in epoch {epoch}/5 after {done} of 20"
    )
    assert f"saved: {out / 'checkpoint.pt'} (epoch 1); nothing else was written. Resume with: " in lines[0]
    assert lines[0].endswith("--resume true")
    assert not (out / "model.pt").exists()  # no 'final' weights from the interrupted state
    saved = torch.load(out / "checkpoint.pt", weights_only=True)
    assert saved["trainer"]["iteration"] == 4  # the end of epoch 1 (4 iterations per epoch)


def test_ctrl_c_before_the_first_checkpoint(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(SCRIPT.replace("engine.state.iteration == 7", "engine.state.iteration == 2"))
    out = tmp_path / "models"
    result = subprocess.run(
        [sys.executable, str(script), "training", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=_sigint_as_in_a_terminal,
    )
    text = result.stdout + result.stderr
    assert result.returncode == 130, text
    line = next(line for line in text.splitlines() if "interrupted" in line)
    assert (
        "training interrupted in epoch 1/5 after 1 of 20 iterations; nothing was saved: no resumable checkpoint of "
        "this run yet (the first is written at epoch 1). Start again with: python -m monai.bundle run" in line
    )
    assert not Path(out / "checkpoint.pt").exists() and not Path(out / "model.pt").exists()


def test_other_exceptions_still_reach_the_other_handlers(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(
        SCRIPT.replace(
            "engine.state.iteration == 7:\n        os.kill(os.getpid(), signal.SIGINT)",
            "engine.state.iteration == 7:\n        raise ValueError('boom')",
        )
    )
    result = subprocess.run(
        [sys.executable, str(script), "training", str(tmp_path / "m")],
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=_sigint_as_in_a_terminal,
    )
    assert result.returncode == 1
    assert "ValueError: boom" in result.stderr and "interrupted" not in result.stdout + result.stderr


def test_ctrl_c_before_the_engines_start_is_one_line(tmp_path):
    script = tmp_path / "start.py"
    script.write_text(
        "import os, signal, time\n"
        "from monai_lexu.handlers import quiet_run\n"
        "quiet_run()\n"
        "quiet_run()  # installed once\n"
        "os.kill(os.getpid(), signal.SIGINT)\n"
        "time.sleep(30)\n"
    )
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=300, preexec_fn=_sigint_as_in_a_terminal
    )
    assert result.returncode == -signal.SIGINT  # Python exits through SIGINT: status 130 in a shell
    from monai_lexu.handlers.interrupt import STARTING_MESSAGE

    assert result.stderr == STARTING_MESSAGE + "\n" and result.stdout == ""


def test_other_uncaught_exceptions_keep_their_traceback(tmp_path):
    script = tmp_path / "start.py"
    script.write_text("from monai_lexu.handlers import quiet_run\nquiet_run()\nraise ValueError('boom')\n")
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=300, preexec_fn=_sigint_as_in_a_terminal
    )
    assert result.returncode == 1
    assert "Traceback" in result.stderr and "ValueError: boom" in result.stderr
