"""What a real bundle run prints (lexu_hecktor, CPU recipe, subprocesses of ``python -m monai.bundle run``): our
start-up summary, ETA and per-case lines are there, the known-harmless library messages are not; Ctrl-C (SIGINT to
the process group, as a terminal sends it) stops a training with one line, exit code 130 and no traceback."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BUNDLE = REPO / "bundles" / "lexu_hecktor"
CONFIGS = BUNDLE / "configs"
FILTERED = (
    "nvImageCodec",
    "NvImgCodecPydicomReader",
    "input summary of monai.bundle.scripts",
    "Engine run resuming",
    "Epoch[1] Complete",
    "Engine run finished",
    "Traceback",
)


def _command(tmp: Path, *configs: str, **overrides) -> list[str]:
    files = "[" + ",".join(f"'{CONFIGS / c}'" for c in configs) + "]"
    args = {
        "dataset_dir": tmp / "data",
        "make_synthetic": "true",
        "ckpt_dir": tmp / "models",
        "output_dir": tmp / "eval",
        **overrides,
    }
    command = [sys.executable, "-m", "monai.bundle", "run", "--config_file", files]
    for key, value in args.items():
        command += [f"--{key}", str(value)]
    return command


def _run(command: list[str], cwd: Path) -> str:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    result = subprocess.run(command, capture_output=True, text=True, cwd=cwd, timeout=1200, env=env)
    text = result.stdout + result.stderr
    assert result.returncode == 0, text[-5000:]
    return text


def _assert_quiet(text: str) -> None:
    for message in FILTERED:
        assert message not in text, f"{message!r} is in the output:\n{text[-5000:]}"


def test_train_evaluate_infer_output_is_quiet_and_informative(tmp_path):
    train = _run(_command(tmp_path, "train.json", "cpu_small.json", epochs=2, val_interval=2), tmp_path)
    _assert_quiet(train)
    assert train.count("lexu_hecktor training: start-up summary") == 1
    assert "SYNTHETIC" in train and "cases        6 training, 3 validation" in train
    assert "schedule     2 epochs x 3 steps = 6 steps; validation every 2 epochs (3 cases)" in train
    assert "recipe       cpu_small: patch 32x32x32" in train
    assert "GPU recipe is running on a CPU" not in train
    eta = re.findall(r"training: epoch \d/2, iteration \d/6, loss \d\.\d{4} \(.*\), \d+\.\d{2} s/it, ETA \S+", train)
    assert len(eta) >= 2, train
    assert re.search(r"validation at epoch 2: 3 cases in \d+:\d\d:\d\d", train)
    assert "Train completed, saved final checkpoint" in train  # what was written stays visible
    assert "Epoch[2] Metrics -- val_soft_dice" in train

    evaluation = _run(_command(tmp_path, "train.json", "evaluate.json", "cpu_small.json"), tmp_path)
    _assert_quiet(evaluation)
    assert evaluation.count("lexu_hecktor evaluation: start-up summary") == 1
    cases = re.findall(r"evaluation: case (\d)/3 (SYN-\d{3}) done \(\d+\.\d s; ETA \d+:\d\d:\d\d\)", evaluation)
    assert [c[0] for c in cases] == ["1", "2", "3"]
    assert re.search(r"evaluation wrote \d+ files to .*eval: .*metrics_fold0_summary\.csv", evaluation)

    glob = str(tmp_path / "data" / "raw" / "imagesTr" / "SYN-00[12]__CT.nii.gz")
    inference = _run(_command(tmp_path, "inference.json", "cpu_small.json", input_glob=glob), tmp_path)
    _assert_quiet(inference)
    assert inference.count("lexu_hecktor inference: start-up summary") == 1
    assert re.search(r"inference: case 1/2 SYN-001__CT\.nii\.gz: 3 files written \(\d+\.\d s; ETA", inference)
    assert "inference wrote into" in inference
    assert (
        "  SYN-002__CT.nii.gz: SYN-002__CT_label.nii.gz, SYN-002__CT_prob.nii.gz, SYN-002__CT_unc.nii.gz" in inference
    )


def test_ctrl_c_during_bundle_training(tmp_path):
    command = _command(tmp_path, "train.json", "cpu_small.json", epochs=200, val_interval=1000, checkpoint_interval=1)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        command,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # even when this run ignores SIGINT
    )
    checkpoint = tmp_path / "models" / "checkpoint.pt"
    try:
        deadline = time.monotonic() + 900
        while not checkpoint.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.5)
        assert checkpoint.exists(), "no checkpoint.pt was written"
        os.killpg(process.pid, signal.SIGINT)  # Ctrl-C in a terminal signals the whole foreground group
        output, _ = process.communicate(timeout=300)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 130, output[-5000:]
    assert "Traceback" not in output and "KeyboardInterrupt" not in output
    lines = [line for line in output.splitlines() if "interrupted" in line]
    assert len(lines) == 1, output[-5000:]
    match = re.search(
        r"training interrupted in epoch (\d+)/200 after \d+ of 600 iterations; saved: (\S+) \(epoch (\d+)\)", lines[0]
    )
    assert match, lines[0]
    assert Path(match.group(2)) == checkpoint and int(match.group(3)) >= 1
    assert int(match.group(3)) <= int(match.group(1))
    resume = lines[0].split("Resume with: ")[1]
    assert resume.startswith('python -m monai.bundle run --config_file "[') and "cpu_small.json" in resume
    assert resume.endswith("--resume true") and f"--ckpt_dir {tmp_path / 'models'}" in resume
    assert not (tmp_path / "models" / "model_fold0.pt").exists()  # no 'final' weights from an interrupted run
