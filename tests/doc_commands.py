"""Run the shell blocks of a Markdown document in the order written, CPU-sized, in a copy of the repository.

``tests/test_readme_commands.py`` (the README, after the quick start) and the ``test_docs_commands_run_in_order`` of
each ``tests/bundles/test_<bundle>.py`` (the bundle's ``docs/README.md``) use it; the ``doc_commands`` fixture of
``tests/conftest.py`` hands this module out.

What "CPU-sized" means here, and the only changes made to the commands as written:

* Every ```` ```bash ```` block runs with ``bash -euo pipefail`` from the root of a fresh copy of the repository's files
  (``git ls-files``: committed and new files, no ``data/``, ``eval/``, ``models/`` or ``dist/``), ``HOME`` in the test's
  folder, one torch thread. A block whose preceding line is ``<!-- doc-test: skip (<reason>) -->`` is not run (the
  reason is shown); the documents use that only for ``make test`` (this suite itself) and the full reproduction.
* ``python``/``python3``/``torchrun``/``make`` are wrappers (first on ``PATH``) that rewrite the arguments with
  :func:`rewrite` and run the real program: a ``monai.bundle run`` of a bundle that has ``configs/cpu_small.json``
  gets it appended when the command lacks it (the GPU recipe becomes the CPU recipe), then ``--epochs 1
  --val_interval 1 --num_workers 0`` (a page may ask for more epochs: ``run_doc(epochs=...)``; the slice protocol,
  which has no CPU override, gets a small plain network on 64x64 slices instead); ``data_prep.hecktor`` without
  ``--spacing`` gets the synthetic recipe's spacing and box (``SYNTHETIC_RECIPE``; the synthetic raw cases are
  smaller than the real-data box); ``data_prep.synthetic riga-like`` without ``--num-per-source`` gets 6/6/4 images
  of 128 px; ``make`` targets run with ``install``
  considered done (``make test``, this suite, as a dry run).
* Placeholders for real data and values a user copies by hand are replaced by text substitution (the ``subst``
  mapping the caller gives: e.g. ``/data/hecktor2022`` -> a synthetic set in the HECKTOR 2022 layout written by
  :func:`write_raw_data`); ``<zip> --sha256 <...>`` gets the hash in the ``<zip>.sha256`` file that ``pack`` wrote.
"""

from __future__ import annotations

import ast
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Block", "blocks", "copy_repository", "rewrite", "run_bundle_doc", "run_doc", "write_raw_data"]

REPO = Path(__file__).resolve().parents[1]
SKIP = re.compile(r"<!--\s*doc-test:\s*skip\s*\((?P<reason>[^)]*)\)\s*-->")
TINY = ["--epochs", "1", "--val_interval", "1", "--num_workers", "0"]
SLICES_TINY = ["--backbone", "plain", "--features", "[8,16,32,64]", "--image_size", "[64,64]", "--batch_size", "8"]
EXCLUDED_DIRS = {"data", "eval", "models", "dist", "build", "work"}


@dataclass
class Block:
    """One fenced ``bash`` block: its text, the 1-based line of its first command and the skip reason if any."""

    text: str
    line: int
    skip: str | None


def blocks(markdown: str) -> list[Block]:
    """The ``bash`` blocks of ``markdown`` in document order."""
    out = []
    for match in re.finditer(r"^```bash\n(.*?)^```", markdown, re.S | re.M):
        before = markdown[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        skip = SKIP.search(before)
        out.append(Block(match.group(1), markdown[: match.start()].count("\n") + 2, skip and skip["reason"]))
    return out


def copy_repository(dest: Path) -> Path:
    """Copy the repository's files (committed and untracked-not-ignored) to ``dest``, without run outputs."""
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO, capture_output=True, check=True
    ).stdout.decode()
    for rel in filter(None, listed.split("\0")):
        parts = Path(rel).parts
        if parts[0] in {"tests", ".git"} or (parts[0] == "bundles" and EXCLUDED_DIRS & set(parts[2:3])):
            continue
        src = REPO / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    return dest


def _config_list(value: str) -> list[str]:
    value = value.strip()
    if value.startswith("["):
        return [str(v) for v in ast.literal_eval(value)]
    return [value]


def _bundle_configs(config_files: list[str]) -> Path | None:
    for f in config_files:
        path = Path(f)
        if path.parent.name == "configs":
            return path.parent
    return None


def rewrite(program: str, args: list[str]) -> list[str]:
    """The CPU-sized variant of ``program args`` (see the module docstring); other commands are returned unchanged."""
    args = list(args)
    if program == "make":  # `make test` is this suite: only checked to exist (dry run)
        return ["-o", "install", *(["-n"] if "test" in args else []), *args]
    try:
        module = args[args.index("-m") + 1]
    except (ValueError, IndexError):
        return args
    rest = args[args.index("-m") + 2 :]
    if module == "monai.bundle" and rest[:1] == ["run"] and "--config_file" in rest:
        at = rest.index("--config_file") + 1
        files = _config_list(rest[at])
        configs = _bundle_configs(files)
        names = {Path(f).name for f in files}
        extra = list(TINY)
        extra[1] = os.environ.get("DOC_TEST_EPOCHS", extra[1])
        if "train_slices.json" in names:
            extra += SLICES_TINY
        elif configs is not None and (configs / "cpu_small.json").is_file() and "cpu_small.json" not in names:
            files.append(str(configs / "cpu_small.json"))
        rest[at] = str(files)
        given = {a for a in rest if a.startswith("--")}
        for key, value in zip(extra[::2], extra[1::2]):
            if key not in given:
                rest += [key, value]
        return args[: args.index("-m") + 2] + rest
    if module == "data_prep.hecktor" and "--spacing" not in rest:
        from monai_lexu.datasets.hecktor.recipe import SYNTHETIC_RECIPE as synthetic

        grid = [f"{v:g}" for v in synthetic.spacing], [f"{v:g}" for v in synthetic.box_mm]
        return args + ["--spacing", *grid[0], "--box-mm", *grid[1]]
    if module == "data_prep.synthetic" and rest[:1] == ["riga-like"] and "--num-per-source" not in rest:
        return args + ["--size", "128", "--num-per-source", "BinRushed=6", "MESSIDOR=6", "Magrabia=4"]
    return args


def _wrappers(bin_dir: Path) -> dict[str, str]:
    """Write the ``python``, ``python3``, ``torchrun`` and ``make`` wrappers; returns the environment to use them."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    me, py = shlex.quote(str(Path(__file__).resolve())), shlex.quote(sys.executable)
    for name in ("python", "python3", "torchrun", "make"):
        wrapper = bin_dir / name
        wrapper.write_text(f'#!/bin/sh\nexec {py} {me} {name} "$@"\n')
        wrapper.chmod(0o755)
    return {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "DOC_COMMANDS_BIN": str(bin_dir)}


def _main(program: str, args: list[str]) -> None:
    """Entry point of the wrappers: rewrite and ``exec`` the real program."""
    new = rewrite(program, args)
    print(f"[doc-test] {program} {shlex.join(new)}", file=sys.stderr, flush=True)
    if program in ("python", "python3"):
        os.execv(sys.executable, [sys.executable, *new])
    if program == "torchrun":
        os.execv(sys.executable, [sys.executable, "-m", "torch.distributed.run", *new])
    make = shutil.which("make", path=os.environ["PATH"].replace(os.environ.get("DOC_COMMANDS_BIN", "\0"), ""))
    # the Makefile's $(PYTHON) runs through the wrapper too
    os.execv(make, [make, f"PYTHON={os.environ['DOC_COMMANDS_BIN']}/python", *new])


def write_raw_data(root: Path) -> dict[str, str]:
    """Synthetic stand-ins for the real-data folders the documents name; returns the placeholder substitutions.

    ``hecktor2022``: 6 cases in the HECKTOR 2022 NIfTI layout (the synthetic generator); ``hecktor_dicom``: 3 cases as
    DICOM (CT and PET series, one RTSTRUCT per rater) from the synthetic NIfTI cases; ``RIGA``: a RIGA-like release;
    ``pngs``: 3 of its fundus images; ``grey``: 3 grey images of the Jungo set.
    """
    from monai_lexu.datasets.hecktor.synthetic import write_synthetic_hecktor

    hecktor = write_synthetic_hecktor(root / "hecktor2022", num_cases=6, seed=3)
    riga = [sys.executable, "-m", "data_prep.synthetic", "riga-like", "--root", str(root / "RIGA"), "--size", "128",
            "--num-per-source", "BinRushed=6", "MESSIDOR=6", "Magrabia=4", "--seed", "3"]  # fmt: skip
    subprocess.run(riga, check=True, capture_output=True, cwd=REPO)
    # the fundus PNGs a user would run inference on: 3 converted images
    convert = [sys.executable, "-m", "data_prep.riga", "--root", str(root / "RIGA"), "--out", str(root / "riga_png")]
    subprocess.run(convert, check=True, capture_output=True, cwd=REPO)
    # grey 0-255 images for the Jungo bundle: 3 images of its synthetic set
    jungo = [sys.executable, "-m", "data_prep.synthetic", "jungo", "--out", str(root / "jungo"), "--num-samples", "4",
             "--size", "64", "--seed", "3"]  # fmt: skip
    subprocess.run(jungo, check=True, capture_output=True, cwd=REPO)
    grey = root / "grey"
    grey.mkdir()
    for p in sorted((root / "jungo").glob("images_unperturbed/*.png"))[:3]:
        shutil.copy(p, grey / p.name)
    pngs = root / "pngs"
    pngs.mkdir()
    for p in sorted((root / "riga_png" / "images").glob("*.png"))[:3]:
        shutil.copy(p, pngs / p.name)
    return {
        "/data/hecktor2022": str(hecktor),
        "/data/hecktor_dicom": str(_write_dicom_cases(root / "hecktor_dicom")),
        "/data/hecktor_prepared": str(root / "hecktor_prepared"),
        "/data/hecktor_dicom_prepared": str(root / "hecktor_dicom_prepared"),
        "/path/to/RIGA": str(root / "RIGA"),
        "/path/to/riga_prepared": str(root / "riga_prepared"),
        '"/data/*.png"': f'"{pngs}/*.png"',
        '"/data/grey/*.png"': f'"{grey}/*.png"',
    }


def _write_dicom_cases(root: Path) -> Path:
    """Three DICOM cases (CT + PET series with SUV tags, two RTSTRUCT raters drawing boxes of different size)."""
    import numpy as np

    sys.path.insert(0, str(REPO / "tests" / "datasets" / "hecktor"))
    import dicom_factory as F  # noqa: E402  (the DICOM writer of the DICOM tests)

    shape, spacing, origin = (12, 32, 32), (2.0, 2.0, 2.0), (-32.0, -32.0, 0.0)
    for k in range(3):  # 3 cases: the converter's 3 folds need at least 3
        study = F.Study(f"DOC{k}")
        hu = np.full(shape, 40, int)
        hu[4:9, 10:20, 10:20] = 60
        ct = F.write_image_series(root / f"CASE{k}" / "ct", study, "CT", hu + 1024, spacing, origin, intercept=-1024.0)
        suv = np.ones(shape)
        suv[4:9, 10:20, 10:20] = 8.0
        factor = 80_000 / (4.0e8 / 2)  # pet_suv_tags' defaults: SUV per Bq/ml
        pet = F.write_image_series(
            root / f"CASE{k}" / "pet", study, "PT", np.rint(suv / factor / 10).astype(int), spacing, origin,
            slopes=10.0, extra=F.pet_suv_tags(), series_number=2,
        )  # fmt: skip
        del pet
        for rater, half in (("rater_A", 10.0), ("rater_B", 8.0)):
            rect = [
                np.array([[-half, -half, z], [half, -half, z], [half, half, z], [-half, half, z]])
                for z in (10.0, 12.0, 14.0)
            ]
            F.write_rtstruct(root / f"CASE{k}" / f"{rater}.dcm", study, ct, {"GTVp": rect}, series_description=rater)
    return root


def run_doc(
    doc: Path, work: Path, subst: dict[str, str], timeout: float = 1500, epochs: int = 1
) -> list[tuple[int, str]]:
    """Run ``doc``'s blocks in order in ``work`` (a repository copy); returns ``(line, skip reason)`` of skipped ones.

    ``epochs`` replaces the one epoch of every bundle run (``DOC_TEST_EPOCHS`` for the wrappers): a page whose later
    commands need trained weights (a fit that refuses members voting nothing) asks for a few.

    Raises:
        AssertionError: a block failed; the message has the block's line, its text and the end of its output.
    """
    env = {**os.environ, **_wrappers(work.parent / "bin"), "HOME": str(work.parent / "home"), "OMP_NUM_THREADS": "1"}
    env.update(MPLBACKEND="Agg", PYTHONUNBUFFERED="1", CI="true", DOC_TEST_EPOCHS=str(epochs))
    (work.parent / "home").mkdir(exist_ok=True)
    skipped = []
    for block in blocks(doc.read_text(encoding="utf-8")):
        if block.skip:
            skipped.append((block.line, block.skip))
            continue
        text = block.text
        if subst:  # one pass: a substituted path is not substituted again
            keys = sorted(subst, key=len, reverse=True)
            text = re.sub("|".join(map(re.escape, keys)), lambda m: subst[m[0]], text)
        # "<sha256 printed by pack>" and the like: the hash in the .sha256 file that pack wrote beside the zip
        text = re.sub(
            r"(\S+\.zip)(\s+--sha256\s+)<[^>]*>", lambda m: f"{m[1]}{m[2]}\"$(cut -d' ' -f1 {m[1]}.sha256)\"", text
        )
        start = time.perf_counter()
        proc = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", text], cwd=work, env=env, capture_output=True, text=True,
            timeout=timeout, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        print(f"[doc-test] {doc} block at line {block.line}: {time.perf_counter() - start:.0f} s", flush=True)
        if proc.returncode:
            out = (proc.stdout + proc.stderr)[-4000:]
            name = doc.relative_to(REPO) if doc.is_relative_to(REPO) else doc
            raise AssertionError(f"{name} block at line {block.line} failed ({proc.returncode}):\n{text}\n---\n{out}")
    return skipped


def run_bundle_doc(
    bundle: str, tmp_path: Path, subst: dict[str, str], epochs: int = 1, timeout: float = 1500
) -> list[tuple[int, str]]:
    """Run ``bundles/<bundle>/docs/README.md`` in order in a fresh repository copy under ``tmp_path``.

    Args:
        bundle: the bundle name.
        tmp_path: an empty folder for the repository copy, the wrappers and ``HOME``.
        subst: placeholder substitutions (:func:`write_raw_data`, shared by the tests of a session).
        epochs: epochs of every bundle run (:func:`run_doc`).
        timeout: seconds per block (a page whose first block trains every fold and both baselines needs more).

    Returns:
        ``(line, reason)`` of the blocks the document marks as not run.
    """
    work = copy_repository(tmp_path / "repo")
    return run_doc(REPO / "bundles" / bundle / "docs" / "README.md", work, subst, timeout=timeout, epochs=epochs)


if __name__ == "__main__":  # the wrappers: doc_commands.py <program> <args...>
    _main(sys.argv[1], sys.argv[2:])
