"""Checks for the files and folders a command writes, with one clear error each.

Every command that writes (``cpo run --out``, ``cpo init``, ``cpo sample-data
--out``, ``cpo audit export --csv``, ...) checks its target here first, so a
path that is a file where a folder is needed (or the reverse), a parent that is
a file, or a folder the user cannot write to fails with an
:class:`~cpo.errors.OutputPathError` naming the path and the fix, never with a
traceback from deep inside a stage.
"""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

from cpo.errors import OutputPathError

#: errno values meaning "you may not write here".
_DENIED = {errno.EACCES, errno.EPERM, errno.EROFS}
#: errno values meaning "a part of the path is a file, not a folder".
_NOT_A_FOLDER = {errno.ENOTDIR, errno.EEXIST}


def file_in_the_way(path: Path) -> Path | None:
    """The first existing component of ``path``'s folders that is not a folder, if any."""
    for ancestor in reversed(Path(path).parents):
        if ancestor.exists() and not ancestor.is_dir():
            return ancestor
    return None


def os_error(path: Path, exc: OSError, action: str) -> OutputPathError:
    """Turn an OS error on ``path`` into one message with a fix.

    Args:
        path: The file or folder the command was writing.
        exc: The error the operating system raised.
        action: What was being done, e.g. ``"create the folder"``.
    """
    # ``path``, not ``exc.filename``: the latter may be a temporary probe file.
    where = Path(path)
    reason = exc.strerror or type(exc).__name__
    if exc.errno in _DENIED:
        return OutputPathError(
            f"{where}: cannot {action}: {reason.lower()}",
            hint="choose a folder you can write to, or fix its permissions",
        )
    if exc.errno in _NOT_A_FOLDER:
        blocker = file_in_the_way(Path(path)) or where
        return OutputPathError(
            f"{path}: cannot {action}: {blocker} is a file, not a folder",
            hint="choose a path whose folders are all folders",
        )
    if exc.errno == errno.ENOSPC:
        return OutputPathError(f"{where}: cannot {action}: no space left on the device")
    return OutputPathError(f"{where}: cannot {action}: {reason}")


def _check_parents(path: Path, what: str) -> None:
    blocker = file_in_the_way(path)
    if blocker is not None:
        raise OutputPathError(
            f"{path}: cannot write the {what} here: {blocker} is a file, not a folder",
            hint="choose a path whose folders are all folders",
        )


def output_dir(
    path: Path | str, what: str = "output folder", *, create: bool = True, writable: bool = True
) -> Path:
    """Check (and create) a folder a command writes into, and that it is writable.

    Args:
        path: The folder.
        what: How the error names it, e.g. ``"run folder"``.
        create: Create it (and its parents) when missing.
        writable: Also try writing in it (see :func:`check_writable`).

    Raises:
        OutputPathError: the path is a file, a parent is a file, or the folder
            cannot be created or written.
    """
    path = Path(path)
    _check_parents(path, what)
    if path.exists() and not path.is_dir():
        raise OutputPathError(
            f"{path}: is a file, but the {what} must be a folder",
            hint="give a folder path (new or existing) instead of a file",
        )
    if create:
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise os_error(path, exc, f"create the {what}") from None
    if writable:
        # A folder that does not exist yet will be created in its nearest existing ancestor.
        existing = next((p for p in (path, *path.parents) if p.is_dir()), None)
        if existing == path:
            check_writable(path, f"write in the {what}")
        elif existing is not None:
            check_writable(existing, f"create the {what} {path} in it")
    return path


def output_file(
    path: Path | str, what: str = "output file", *, create: bool = True, writable: bool = True
) -> Path:
    """Check a file a command writes: not a folder, its folder exists (created) and is writable.

    Args:
        path: The file.
        what: How the error names it, e.g. ``"CSV export"``.
        create: Create its folder (and parents) when missing.
        writable: Also try writing in its folder (off for a file that may only be read).

    Raises:
        OutputPathError: the path is a folder, a parent is a file, or the
            folder cannot be created or written.
    """
    path = Path(path)
    if path.is_dir():
        raise OutputPathError(
            f"{path}: is a folder, but the {what} must be a file",
            hint=f"give a file name (a new name, or one inside {path})",
        )
    _check_parents(path, what)
    output_dir(path.parent, f"folder of the {what}", create=create, writable=writable)
    return path


def check_writable(folder: Path, action: str = "write in the folder") -> None:
    """Create and remove a probe file in ``folder``: the only check that is right for every user.

    ``os.access`` answers for the real user id and ignores read-only mounts
    and ACLs in places, so the folder is tried instead.

    Args:
        folder: The folder to try.
        action: What an error says could not be done, e.g. ``"write in the run folder"``.

    Raises:
        OutputPathError: the folder cannot be written.
    """
    try:
        descriptor, probe = tempfile.mkstemp(prefix=".cpo-write-check-", dir=folder)
    except OSError as exc:
        raise os_error(folder, exc, action) from None
    os.close(descriptor)
    Path(probe).unlink(missing_ok=True)
