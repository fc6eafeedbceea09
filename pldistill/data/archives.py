"""Real data sets as a folder or a ``.tar.gz``: archives are unpacked once into the git-ignored cache.

``data_folder(path, ...)`` is what every real-data adapter calls with the
recipe's path setting:

- an existing folder is used as it is;
- an existing ``.tar.gz`` / ``.tgz`` / ``.tar`` is unpacked once into
  ``<cache>/archives/<name>-<key>/`` (key: the archive's resolved path, size
  and modification time, so a replaced archive is unpacked again) and that
  folder is returned on every later call. Unpacking writes into a temporary
  folder beside it and renames it into place, so an interrupted unpack never
  leaves a half-filled folder that looks finished. Members with absolute
  paths or ``..`` are refused, and tarfile's ``data`` filter (no links
  outside the tree, no devices, no set-uid bits) is used where Python has it;
- a path that does not exist but whose ``<path>.tar.gz`` does is that archive
  (a recipe can say ``data/cifar10-jpeg`` and the user drop either the
  folder or the archive there);
- anything else is a ``FileNotFoundError`` whose one line names the path and
  says what to pass instead. pldistill never downloads data.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import os
import shutil
import tarfile
import zlib
from pathlib import Path, PurePosixPath

from ..errors import DataError
from .cache import default_cache_dir

ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar")


def is_archive(path: Path) -> bool:
    return path.is_file() and path.name.lower().endswith(ARCHIVE_SUFFIXES)


def _stem(path: Path) -> str:
    name = path.name
    for suffix in ARCHIVE_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def archive_key(path: Path) -> str:
    """Identifies one version of one archive file."""
    st = path.stat()
    return hashlib.sha256(f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:12]


def check_members(tar: tarfile.TarFile, archive: Path) -> list[tarfile.TarInfo]:
    """Every member, once none of them could land outside the target folder."""
    members = tar.getmembers()
    for m in members:
        parts = PurePosixPath(m.name).parts
        if m.name.startswith(("/", "\\")) or ".." in parts or (parts and ":" in parts[0]):
            raise ValueError(f"{archive}: refusing to unpack member {m.name!r} (absolute path or '..')")
        if not (m.isfile() or m.isdir()):
            raise ValueError(f"{archive}: refusing to unpack member {m.name!r}: only files and folders are "
                             "expected in a data archive (links, devices)")
    return members


@contextlib.contextmanager
def _readable(archive: Path):
    """The open archive; a damaged or foreign file (truncated, not gzip, not tar) is one clear error."""
    try:
        with tarfile.open(archive) as tar:
            yield tar
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        if isinstance(exc, OSError) and not isinstance(exc, gzip.BadGzipFile) and exc.errno is not None:
            raise  # a real I/O error (disk full while unpacking, permissions): its own message is the right one
        detail = " ".join(str(exc).split())[:120] or type(exc).__name__
        raise DataError(f"{archive}: not a readable archive ({detail}); pass an intact .tar.gz/.tgz/.tar "
                        "or the extracted folder") from None


def unpack(archive: Path, cache_dir: Path) -> Path:
    """The folder ``archive`` unpacks to under ``cache_dir/archives``, unpacking it on first use."""
    archive = Path(archive)
    target = Path(cache_dir) / "archives" / f"{_stem(archive)}-{archive_key(archive)}"
    if target.is_dir():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    print(f"unpacking {archive} into {target} (once; later runs reuse it)")
    try:
        with _readable(archive) as tar:
            members = check_members(tar, archive)
            if hasattr(tarfile, "data_filter"):  # Python ≥ 3.11.4 / 3.12: the safe extraction filter
                tar.extractall(tmp, members=members, filter="data")
            else:  # pragma: no cover - older Pythons; check_members already refused what the filter would
                tar.extractall(tmp, members=members)
        try:
            os.rename(tmp, target)  # atomic: the folder appears complete or not at all
        except OSError:
            if not target.is_dir():  # another process won the race: use its copy
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def data_folder(path: str | Path, what: str, hint: str, cache_dir: Path | None = None) -> Path:
    """A data folder from a recipe's path setting: a folder, or an archive unpacked once (module docstring).

    ``what`` names the data set in messages ("CIFAR-10 (JPEG)"), ``hint`` says
    where to get it ("../shared/data/cifar10-jpeg.tar.gz").
    """
    path = Path(path)
    if not path.exists():
        beside = next((path.with_name(path.name + s) for s in ARCHIVE_SUFFIXES
                       if path.with_name(path.name + s).is_file()), None)
        if beside is None:
            raise FileNotFoundError(
                f"{path}: no such folder or archive for {what} (nor {path.name}.tar.gz beside it); pass the "
                f"archive ({hint}) or an extracted copy, or put either at {path}; pldistill never downloads data"
            )
        path = beside
    if path.is_dir():
        return path
    if not is_archive(path):
        raise FileNotFoundError(f"{path}: not a folder or a .tar.gz/.tgz/.tar archive; pass {what} as {hint} "
                                "or an extracted copy")
    return unpack(path, cache_dir or default_cache_dir())


def find_root(folder: Path, marker: str, what: str) -> Path:
    """``folder`` if it holds ``marker``; else its one subfolder that does (archives often wrap a folder)."""
    if (folder / marker).exists():
        return folder
    inner = [d for d in sorted(folder.iterdir()) if d.is_dir() and (d / marker).exists()]
    if len(inner) == 1:
        return inner[0]
    found = sorted(p.name for p in folder.iterdir())[:8]
    raise FileNotFoundError(f"{folder}: expected {what} with {marker!r} in it (found {found})")
