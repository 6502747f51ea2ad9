"""Uploaded files: size-limited saving to disk and safe extraction of a content zip.

The web app never trusts an upload's name or size: the request's
``Content-Length`` is checked before the body is read, each file is copied to
disk in chunks and cut off at the limit, and a zip is extracted entry by entry
with its names, entry count and uncompressed size checked first (no absolute
paths, no ``..``, no links, no zip bombs).
"""

from __future__ import annotations

import shutil
import stat
import zipfile
from pathlib import Path, PurePosixPath
from typing import Protocol

from cpo.errors import DataValidationError

CUSTOMER_SUFFIXES = (".csv", ".tsv", ".txt", ".parquet")
#: Default upload limit in MB (``cpo serve --max-upload-mb``); this module is light
#: (standard library only), so ``cpo serve``'s options can name it at start-up.
DEFAULT_MAX_UPLOAD_MB = 200.0
_CHUNK = 1024 * 1024
MB = 1024 * 1024


class UploadTooLarge(DataValidationError):
    """An upload is larger than the configured limit (the page answers 413)."""


class AsyncReadable(Protocol):
    """What an uploaded file offers (``starlette.datastructures.UploadFile``)."""

    filename: str | None

    async def read(self, size: int = -1) -> bytes:
        """Read up to ``size`` bytes."""
        ...


def limit_text(limit_bytes: int) -> str:
    """A size limit for people: ``200 MB``."""
    return f"{limit_bytes / MB:.3g} MB"


def check_declared_size(content_length: str | None, limit_bytes: int, what: str) -> None:
    """Refuse a request whose declared body is over the limit, before reading it.

    Raises:
        UploadTooLarge: ``Content-Length`` is larger than ``limit_bytes``.
    """
    if (
        content_length is not None
        and content_length.isdigit()
        and int(content_length) > limit_bytes
    ):
        raise UploadTooLarge(
            f"{what}: the upload is {int(content_length) / MB:.1f} MB, "
            f"over the limit of {limit_text(limit_bytes)}",
            hint="upload a smaller file, or ask an admin to raise the upload limit",
        )


async def save_upload(upload: AsyncReadable, dest: Path, limit_bytes: int, what: str) -> int:
    """Copy an uploaded file to ``dest`` in chunks; returns its size in bytes.

    Raises:
        UploadTooLarge: the file is larger than ``limit_bytes`` (nothing is kept).
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    with dest.open("wb") as out:
        while chunk := await upload.read(_CHUNK):
            written += len(chunk)
            if written > limit_bytes:
                break
            out.write(chunk)
    if written > limit_bytes:
        dest.unlink(missing_ok=True)
        raise UploadTooLarge(
            f"{what}: the file is over the limit of {limit_text(limit_bytes)}",
            hint="upload a smaller file, or ask an admin to raise the upload limit",
        )
    return written


def customer_file_name(filename: str | None) -> str:
    """The name an uploaded customer file is stored under (only its suffix is kept).

    Raises:
        DataValidationError: the suffix is not one the customer reader reads.
    """
    suffix = PurePosixPath((filename or "").replace("\\", "/")).suffix.lower()
    if suffix not in CUSTOMER_SUFFIXES:
        raise DataValidationError(
            f"customer file {filename!r}: a {suffix or 'file without a suffix'} is not read",
            hint=f"upload a CSV or Parquet file ({', '.join(CUSTOMER_SUFFIXES)})",
        )
    return f"customers{suffix}"


def extract_zip(archive: Path, dest: Path, *, max_bytes: int, max_entries: int) -> Path:
    """Extract a content-folder zip safely into ``dest`` and return the content folder.

    When every entry sits in one top-level folder, that folder is returned.

    Raises:
        DataValidationError: not a zip, too many entries, too large once
            extracted, or an entry with an absolute path, ``..``, or a link.
    """
    try:
        with zipfile.ZipFile(archive) as bundle:
            members = [m for m in bundle.infolist() if not m.is_dir()]
            _check_members(archive, members, max_bytes=max_bytes, max_entries=max_entries)
            dest.mkdir(parents=True, exist_ok=True)
            budget = max_bytes
            for member in members:
                budget -= _extract_member(bundle, member, dest, budget)
    except zipfile.BadZipFile:
        raise DataValidationError(
            "content zip: the file is not a zip archive",
            hint="zip the content folder (its JSON documents) and upload that",
        ) from None
    tops = {PurePosixPath(m.filename).parts[0] for m in members}
    only = dest / next(iter(tops)) if len(tops) == 1 else None
    return only if only is not None and only.is_dir() else dest


def _check_members(
    archive: Path, members: list[zipfile.ZipInfo], *, max_bytes: int, max_entries: int
) -> None:
    if not members:
        raise DataValidationError(
            "content zip: the archive holds no files", hint="zip the content folder's JSON files"
        )
    if len(members) > max_entries:
        raise DataValidationError(
            f"content zip: {len(members)} files, more than the limit of {max_entries}",
            hint="upload only the approved-content documents",
        )
    declared = sum(m.file_size for m in members)
    if declared > max_bytes:
        raise UploadTooLarge(
            f"content zip: {declared / MB:.1f} MB once extracted, "
            f"over the limit of {limit_text(max_bytes)}",
            hint="upload only the approved-content documents",
        )
    for member in members:
        _check_name(member)


def _check_name(member: zipfile.ZipInfo) -> None:
    name = member.filename
    path = PurePosixPath(name.replace("\\", "/"))
    mode = member.external_attr >> 16
    problem = None
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        problem = "an absolute path"
    elif ".." in path.parts:
        problem = "a '..' path that leaves the folder"
    elif stat.S_ISLNK(mode):
        problem = "a symbolic link"
    if problem:
        raise DataValidationError(
            f"content zip: entry {name!r} is {problem}; nothing was extracted",
            hint="zip the content folder itself, with relative paths and plain files",
        )


def _extract_member(
    bundle: zipfile.ZipFile, member: zipfile.ZipInfo, dest: Path, budget: int
) -> int:
    """Write one entry, counting the bytes actually inflated (never trust the header)."""
    target = dest.joinpath(*PurePosixPath(member.filename.replace("\\", "/")).parts)
    target.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    with bundle.open(member) as source, target.open("wb") as out:
        while chunk := source.read(_CHUNK):
            written += len(chunk)
            if written > budget:
                out.close()
                shutil.rmtree(dest, ignore_errors=True)
                raise UploadTooLarge(
                    f"content zip: entry {member.filename!r} inflates past the size limit",
                    hint="upload only the approved-content documents",
                )
            out.write(chunk)
    return written
