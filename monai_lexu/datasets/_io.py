"""Small file helpers shared by the data-set converters: writable output folders, atomic text files, file digests."""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path

__all__ = ["atomic_write_text", "check_writable_dir", "file_sha256"]


def check_writable_dir(path: str | os.PathLike, what: str = "output folder") -> Path:
    """Check, before any work is done, that ``path`` is (or can be created as) a folder a file can be written in.

    Nothing is created: when ``path`` does not exist yet, its nearest existing parent is checked instead (a hidden
    probe file is written there and removed).

    Args:
        path: the folder.
        what: what the folder is, for the message.

    Returns:
        the folder as a ``Path``.

    Raises:
        PermissionError: naming the folder, if it is a file, lies below a file, or cannot be written to (a read-only
            folder or parent).
    """
    path = Path(path)
    existing = path
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    if not existing.is_dir():
        raise PermissionError(f"{what} {path} cannot be created: {existing} is a file, not a folder.")
    probe = existing / f".write-test-{uuid.uuid4().hex[:8]}"
    try:
        probe.write_bytes(b"")
    except OSError as e:
        where = "" if existing == path else f" (its parent {existing} is not writable)"
        raise PermissionError(f"{what} {path} is not writable{where}: {e.strerror or e}.") from e
    finally:
        try:
            probe.unlink(missing_ok=True)
        except OSError:
            pass
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file in the same folder and ``os.replace``.

    A reader sees the old file or the new one, never a half-written one; on error the old file stays.

    Args:
        path: the file.
        text: its new content (UTF-8).

    Returns:
        the path.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".tmp-{uuid.uuid4().hex[:8]}-{path.name}")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def file_sha256(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
