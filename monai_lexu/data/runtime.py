"""What a run may use and what its data is: torch threads and loader workers for the cores, synthetic data sets
recognised.

Standard library only at import (the configs call these while they are parsed; :func:`set_num_threads` imports torch
when called).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

__all__ = [
    "NUM_THREADS_ENV",
    "SYNTHETIC_MARKER",
    "available_cores",
    "configure_backends",
    "default_num_threads",
    "speed_options",
    "loader_workers",
    "set_num_threads",
    "synthetic_marker",
]

logger = logging.getLogger(__name__)

SYNTHETIC_MARKER = "SYNTHETIC_DATA.txt"
"""The note every synthetic generator of :mod:`monai_lexu.datasets` writes next to the data it makes."""

NUM_THREADS_ENV = "MONAI_LEXU_NUM_THREADS"
"""Environment variable that fixes the torch thread count of every bundle run left at ``num_threads: "auto"`` (the
test suite sets it; subprocesses inherit it)."""

_warned: set[tuple[int, int]] = set()


def available_cores() -> int:
    """The number of CPU cores this process may run on (``len(os.sched_getaffinity(0))``, else ``os.cpu_count()``)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def loader_workers(requested: int | str | None, cores: int | None = None) -> int:
    """The number of loader workers (``DataLoader``/``CacheDataset`` ``num_workers``) a run uses: the requested
    number, capped by the cores this process may use.

    The bundles' configs pass their ``num_workers`` through it (``"$monai_lexu.data.loader_workers(@num_workers)"``),
    so a ``--num_workers`` override is capped too. More workers than cores only add memory (each worker holds a copy
    of the cached data it touches; 4 workers of the 96^3 HECKTOR recipe took about 12.5 GB on 2 cores) and PyTorch's
    "exceeds the suggested max number of worker" warning. The cap is logged once per (requested, cores) pair.

    Args:
        requested: the configured number (``0`` loads in the main process); ``None`` is 0.
        cores: the cores available (default :func:`available_cores`).

    Returns:
        ``min(requested, cores)``, at least 0.

    Raises:
        ValueError: ``requested`` is not a non-negative integer.
    """
    try:
        wanted = int(requested or 0)
    except (TypeError, ValueError):
        raise ValueError(f"num_workers must be a non-negative integer, got {requested!r}") from None
    if wanted < 0:
        raise ValueError(f"num_workers must be a non-negative integer, got {requested!r}")
    cores = available_cores() if cores is None else max(1, int(cores))
    used = min(wanted, cores)
    if used < wanted and (wanted, cores) not in _warned:
        _warned.add((wanted, cores))
        logger.info("num_workers %d capped to %d: this process may use %d CPU cores", wanted, used, cores)
    return used


def default_num_threads() -> tuple[int, str]:
    """The torch thread count of ``num_threads: "auto"`` and why.

    In order: ``$MONAI_LEXU_NUM_THREADS`` (:data:`NUM_THREADS_ENV`) or ``$OMP_NUM_THREADS`` when set (an explicit
    choice; ``torchrun`` sets ``OMP_NUM_THREADS=1`` for several processes); 1 on a machine with at most 2 usable cores
    (measured on the shared 2-core machines: with the cores oversubscribed, two OpenMP threads per process spin at
    barriers, 1.8 CPU-s per training iteration against 0.14 s with one thread, same results); 1 per process under
    multi-GPU DDP (the GPU does the arithmetic; the cores feed the data loaders); else the usable cores divided by
    the processes of this node (``$LOCAL_WORLD_SIZE`` under ``torchrun``, else 1).

    Returns:
        ``(threads, reason)``.
    """
    for name in (NUM_THREADS_ENV, "OMP_NUM_THREADS"):
        value = os.environ.get(name, "").strip()
        if value:
            try:
                n = int(value)
            except ValueError:
                raise ValueError(f"${name} must be a positive integer, got {value!r}.") from None
            if n < 1:
                raise ValueError(f"${name} must be a positive integer, got {value!r}.")
            return n, f"${name}"
    cores = available_cores()
    local = max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1))
    if cores <= 2:
        return 1, f"{cores} usable cores"
    if local > 1:
        import torch

        if torch.cuda.is_available():
            return 1, f"DDP on GPUs, {local} processes on this node"
    return max(1, cores // local), f"{cores} usable cores / {local} process(es) on this node"


def set_num_threads(num_threads: int | str | None = "auto") -> int:
    """Set the torch intra-op thread count at the start of a bundle run (every config's ``initialize`` calls it first
    with the ``num_threads`` setting).

    Args:
        num_threads: a positive integer, ``"auto"`` (:func:`default_num_threads`) or ``None`` (leave torch's default).

    Returns:
        the thread count now in effect.

    Raises:
        ValueError: on anything else (the message names the setting).
    """
    import torch

    if num_threads is None:
        return torch.get_num_threads()
    if isinstance(num_threads, str) and num_threads.strip().lower() == "auto":
        n, reason = default_num_threads()
    else:
        try:
            n = int(num_threads)
        except (TypeError, ValueError):
            n = 0
        if isinstance(num_threads, bool) or n < 1 or str(n) != str(num_threads).strip():
            raise ValueError(
                f"num_threads must be a positive integer, 'auto' or null, got {num_threads!r} (e.g. --num_threads 2)."
            )
        reason = "num_threads setting"
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    logger.debug("torch threads: %d (%s)", n, reason)
    return n


def configure_backends(deterministic: bool = True) -> bool:
    """cuDNN settings of a run (every config's ``initialize``, with the ``deterministic`` setting).

    ``deterministic`` (default): ``cudnn.deterministic = True``, ``cudnn.benchmark = False`` (the same convolution
    algorithms every run; with the configs' ``set_determinism`` seed, repeatable results). ``False``:
    ``cudnn.benchmark = True`` (cuDNN times the algorithms for each input shape on the first batches and keeps the
    fastest: faster on a GPU with fixed patch sizes, not bit-repeatable). No effect on a CPU.

    Returns:
        the ``cudnn.benchmark`` now in effect.
    """
    import torch

    if not isinstance(deterministic, bool):
        raise ValueError(f"deterministic must be true or false, got {deterministic!r}.")
    torch.backends.cudnn.deterministic = deterministic
    torch.backends.cudnn.benchmark = not deterministic
    return torch.backends.cudnn.benchmark


def speed_options(network: Any, compile: bool | str = False, channels_last: bool = False) -> Any:
    """Optional speed settings of a network, applied IN PLACE (``state_dict`` keys, checkpoints and the configs'
    ``@network`` references stay the same).

    Args:
        network: the ``torch.nn.Module``.
        compile: ``False``; ``True`` (``torch.compile``'s default backend, inductor: needs a C++ compiler on CPU, a
            GPU toolchain on CUDA); or a backend name (e.g. ``"eager"``, which exercises the graph capture alone).
            Uses ``Module.compile()``, which compiles ``forward`` without wrapping the module.
        channels_last: store the convolution weights channels-last (``torch.channels_last`` for 2D, ``_3d`` for 3D)
            and convert every 4D / 5D input to it in a forward pre-hook (tensor cores on GPUs prefer NHWC; on CPU
            oneDNN may or may not gain).

    Returns:
        ``network`` itself.
    """
    import torch

    if channels_last:
        dims = {p.ndim for p in network.parameters()}
        if 5 in dims:
            network.to(memory_format=torch.channels_last_3d)
        elif 4 in dims:
            network.to(memory_format=torch.channels_last)

        def to_channels_last(_module: Any, args: tuple) -> tuple:
            def convert(x: Any) -> Any:
                if isinstance(x, torch.Tensor) and x.ndim in (4, 5):
                    fmt = torch.channels_last if x.ndim == 4 else torch.channels_last_3d
                    return x.contiguous(memory_format=fmt)
                return x

            return tuple(convert(a) for a in args)

        network.register_forward_pre_hook(to_channels_last)
    if compile:
        network.compile(**({} if compile is True else {"backend": str(compile)}))
    return network


def synthetic_marker(dataset_dir: str | os.PathLike | None) -> Path | None:
    """The synthetic-data note of a data set folder, or None.

    Looks in ``<dir>/raw/``, ``<dir>/`` and the same in its two parent folders (an inference input folder such as
    ``<dataset>/raw/imagesTr`` belongs to the set whose ``raw/SYNTHETIC_DATA.txt`` marks it).

    Args:
        dataset_dir: a data set folder, an input folder in it, or a file in it (e.g. its ``datalist.json``).

    Returns:
        the note's path when the data set was generated by a synthetic generator, else None.
    """
    if dataset_dir is None:
        return None
    path = Path(dataset_dir)
    folder = path.parent if path.is_file() or path.suffix == ".json" else path
    candidates = [d / sub / SYNTHETIC_MARKER for d in [folder, *list(folder.parents)[:2]] for sub in ("raw", ".")]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    return None
