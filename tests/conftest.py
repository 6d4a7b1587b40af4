"""Suite-wide test settings and fixtures shared by several test folders."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest


@pytest.fixture(scope="session", autouse=True)
def _share_the_cores():
    """Give every pytest-xdist worker its share of the cores, and every bundle run of the tests the same explicit
    thread count (``$MONAI_LEXU_NUM_THREADS``, read by the bundles' ``num_threads: "auto"``; inherited by bundle
    subprocesses).

    With ``-n 2`` on 2 cores each worker would otherwise run 2 torch threads: the oversubscribed threads slowed the
    3D bundle tests about 3.6x (281 s against 77 s for the two HECKTOR baseline files).
    """
    import torch

    from monai_lexu.data import NUM_THREADS_ENV

    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    previous = torch.get_num_threads()
    previous_env = os.environ.get(NUM_THREADS_ENV)
    threads = max(1, (os.cpu_count() or 1) // workers)
    torch.set_num_threads(threads)
    os.environ[NUM_THREADS_ENV] = str(threads)
    yield
    torch.set_num_threads(previous)
    if previous_env is None:
        os.environ.pop(NUM_THREADS_ENV, None)
    else:
        os.environ[NUM_THREADS_ENV] = previous_env


@pytest.fixture
def read_only_dir(tmp_path):
    """A folder nobody may write to: chmod for a normal user; root ignores modes, so ``chattr +i`` (ext2/3/4)."""
    folder = tmp_path / "read_only"
    folder.mkdir()
    if os.geteuid() != 0:
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
        return
    if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode:
        pytest.skip("running as root without chattr +i support: no way to make a read-only folder")
    yield folder
    subprocess.run(["chattr", "-i", str(folder)], check=True)


@pytest.fixture(scope="session")
def doc_commands():
    """The document-command runner :mod:`tests/doc_commands.py` (runs a Markdown file's ``bash`` blocks in order)."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("doc_commands", Path(__file__).with_name("doc_commands.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules["doc_commands"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def doc_raw_data(tmp_path_factory, doc_commands):
    """Synthetic stand-ins for the real-data folders the documents name (one set per test session and worker)."""
    return doc_commands.write_raw_data(tmp_path_factory.mktemp("doc_raw"))
