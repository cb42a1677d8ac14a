"""Write files and folders so that a crash never leaves a half-written output: temp file (or
folder), then rename."""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

__all__ = ["atomic_path", "atomic_dir", "write_json_atomic", "publish"]


def _default_mode(bits: int = 0o666) -> int:
    """The mode a new file (``0o666``) or folder (``0o777``) gets: ``bits`` less the umask."""
    mask = os.umask(0)
    os.umask(mask)
    return bits & ~mask


def publish(tmp: str | Path, path: str | Path) -> None:
    """Give the temporary file ``tmp`` a normal file's mode (mkstemp makes it 0600) and move it
    onto ``path`` atomically."""
    os.chmod(tmp, _default_mode())
    os.replace(tmp, path)


@contextmanager
def atomic_path(path: str | Path, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it replaces ``path`` atomically.

    ``suffix`` keeps an extension on the temp name for writers that look at it (``.mat``).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix + ".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        publish(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield a temporary folder next to ``path``; on success it is renamed to ``path`` at once, so
    no reader ever sees it half-written.

    Raises:
        FileExistsError: ``path`` appeared meanwhile (another process finished first); the
            temporary folder is removed and ``path`` left as it is.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        yield tmp
        os.chmod(tmp, _default_mode(0o777))  # a normal folder's mode (mkdtemp makes it 0700)
        try:
            os.rename(tmp, path)  # fails onto a folder that is not empty
        except OSError:
            if path.exists():
                raise FileExistsError(str(path)) from None
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_json_atomic(path: str | Path, obj: Any, indent: int | None = None) -> None:
    """Serialise ``obj`` as JSON to ``path`` atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, "w") as f:
            json.dump(obj, f, indent=indent)
            f.flush()
            os.fsync(f.fileno())
