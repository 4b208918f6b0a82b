"""Safe output files, shared by the command line, batch and the napari writer.

The rules (README, "Command line"):

* every output path is checked before any computation (:func:`check_outputs`):
  its folder exists and can be written, it is not an input or another output of
  the same call (refused even with --overwrite), its name fits its format, and an
  existing file is only replaced with --overwrite;
* every file is written under a temporary name unique to the process,
  ``.<name>.<host>.<pid>.<random>.part`` in the output's own folder, flushed to
  disk (fsync) and only then renamed; without --overwrite the rename never replaces
  a file that appeared meanwhile (a second run finishing first keeps its file);
* the outputs of one command are all-or-nothing (:class:`OutputSet`): all are
  written to temporary names first and renamed together at the end;
* temporary files left by a killed run on this host are removed when the next run
  writes the same output (:func:`remove_stale_parts`);
* an operating-system error while writing (a full disk, a read-only folder) is a
  one-line :class:`SimInputError` naming the file.
"""

from __future__ import annotations

import errno
import os
import re
import secrets
import shutil
import socket
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from .errors import SimInputError
from .metadata import TIFF_SUFFIXES
from .records import (  # noqa: F401  (importable from here, as before)
    RECORD_IGNORED,
    read_output_metadata,
    record_differences,
    settings_record,
)

PART_SUFFIX = ".part"
LEGACY_PART_AGE_S = 3600.0  # unparseable temporary files older than this are removed


class OutputExistsError(SimInputError):
    """An output appeared while this run was writing it (another run finished first)."""


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname().split(".")[0]) or "host"


def part_path(final: str | Path) -> Path:
    """Return a temporary name for ``final`` in its folder, unique to this process and call."""
    final = Path(final)
    return final.with_name(f".{final.name}.{_host()}.{os.getpid()}.{secrets.token_hex(4)}{PART_SUFFIX}")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def remove_path(path: Path) -> None:
    """Remove a file, link or folder tree; missing is fine."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        try:
            path.unlink()
        except FileNotFoundError:
            pass


def remove_stale_parts(final: str | Path) -> list[Path]:
    """Remove the stale temporary files of ``final``; return what was removed.

    Those left by runs on this host that are no longer alive, the fixed ``.<name>.part`` of
    earlier versions, and other unparseable ones older than an hour.
    """
    final = Path(final)
    prefix = f".{final.name}."
    removed: list[Path] = []
    try:
        entries = list(final.parent.iterdir())
    except OSError:
        return removed
    host = _host()
    for entry in entries:
        name = entry.name
        if name == f".{final.name}{PART_SUFFIX}":  # the old fixed name
            rest = ""
        elif name.startswith(prefix) and name.endswith(PART_SUFFIX):
            rest = name[len(prefix):-len(PART_SUFFIX)]
        else:
            continue
        fields = rest.split(".")
        if rest == "":  # the fixed name of earlier versions: a crash's leftover
            stale = True
        elif len(fields) == 3 and fields[1].isdigit():
            stale = fields[0] == host and not _pid_alive(int(fields[1]))
        else:
            try:
                stale = time.time() - entry.stat().st_mtime > LEGACY_PART_AGE_S
            except OSError:
                stale = False
        if stale:
            remove_path(entry)
            removed.append(entry)
    return removed


def _same(a: Path, b: Path) -> bool:
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    return os.path.normcase(os.path.abspath(a.resolve())) == os.path.normcase(os.path.abspath(b.resolve()))


def check_folder_writable(folder: Path) -> None:
    """Raise a one-line SimInputError unless files can be created in ``folder``."""
    if not folder.exists():
        raise SimInputError(f"output folder does not exist: {folder}")
    if not folder.is_dir():
        raise SimInputError(f"{folder} is a file, not a folder")
    probe = folder / f".napari-sim-ml-probe.{os.getpid()}.{secrets.token_hex(4)}{PART_SUFFIX}"
    try:
        probe.open("xb").close()
    except OSError as exc:
        raise SimInputError(f"cannot write into {folder}: {exc.strerror or exc}") from None
    probe.unlink(missing_ok=True)


def check_outputs(
    outputs: Sequence[tuple[str | Path | None, str]],
    inputs: Iterable[str | Path | None] = (),
    overwrite: bool = False,
) -> None:
    """Check every output of one command before anything is computed.

    outputs: (path, kind) pairs, kind 'tiff', 'json' or 'zarr'; a None path is skipped.
    inputs: every file the command reads (raw stack, parameters, OTF ...).
    Raises SimInputError (one sentence) when an output is an input or another output
    (always), is a folder (except zarr), has a name its format cannot have, cannot be
    created, or exists without ``overwrite``.
    """
    ins = [Path(p) for p in inputs if p]
    seen: list[Path] = []
    for raw_path, kind in outputs:
        if raw_path is None:
            continue
        if str(raw_path).strip() == "":
            raise SimInputError("an output file name is empty")
        path = Path(raw_path)
        for other in ins:
            if _same(path, other):
                raise SimInputError(f"{path} is an input of this command; it is never written over, "
                                    "choose another output name")
        for other in seen:
            if _same(path, other):
                raise SimInputError(f"{path} is given for two outputs of this command")
        seen.append(path)
        if kind == "tiff" and path.suffix.lower() not in TIFF_SUFFIXES:
            raise SimInputError(f"{path}: this output is written as TIFF; give a name ending in .tif or .tiff")
        if kind != "zarr" and path.is_dir():
            raise SimInputError(f"{path} is a folder; give a file name")
        check_folder_writable(path.parent if str(path.parent) else Path("."))
        if (path.exists() or path.is_symlink()) and not overwrite:
            raise SimInputError(f"{path} exists; use --overwrite to replace it")


def fsync_path(path: Path) -> None:
    """Flush a file, or every file and folder of a tree, to disk."""
    if path.is_dir():
        for root, _, files in os.walk(path):
            for name in files:
                fsync_path(Path(root) / name)
            _fsync_dir(Path(root))
        return
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems cannot fsync a folder
        pass
    finally:
        os.close(fd)


def _exists_message(final: Path) -> str:
    return (f"{final} appeared while this run was writing it (another run?); it was kept and this "
            "run's copy discarded; use --overwrite to replace it")


def commit(tmp: Path, final: Path, overwrite: bool) -> None:
    """Flush ``tmp`` to disk and rename it to ``final``.

    Without ``overwrite`` an existing ``final`` is never replaced, even one that appeared a
    moment ago (files: a hard link, which fails when the name exists); raises
    :class:`OutputExistsError` then and leaves ``tmp`` for the caller to remove.
    """
    fsync_path(tmp)
    if tmp.is_dir():
        if final.exists() or final.is_symlink():
            if not overwrite:
                raise OutputExistsError(_exists_message(final))
            old = part_path(final)
            os.rename(final, old)
            os.rename(tmp, final)
            remove_path(old)
        else:
            os.rename(tmp, final)
    elif overwrite:
        os.replace(tmp, final)
    else:
        try:
            os.link(tmp, final)
        except FileExistsError:
            raise OutputExistsError(_exists_message(final)) from None
        except OSError as exc:  # a file system without hard links
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
                raise
            if final.exists():
                raise OutputExistsError(_exists_message(final)) from None
            os.rename(tmp, final)
        else:
            os.unlink(tmp)
    _fsync_dir(final.parent)


def os_error_message(path: Path | str, exc: OSError) -> str:
    """Return one sentence for a failed write.

    A short write without an errno (tifffile's "N requested and M written") on a full file
    system says so.
    """
    reason = exc.strerror or str(exc)
    if exc.errno is None:
        try:
            if shutil.disk_usage(Path(path).parent if str(Path(path).parent) else ".").free < 2**20:
                reason = f"no space left on the device ({reason})"
        except OSError:
            pass
    return f"cannot write {path}: {reason}"


class OutputSet:
    """The outputs of one command, all-or-nothing.

    ``stage(final)`` returns the temporary path to write; ``commit()`` renames every
    staged file to its final name (on a failure the files this call created are removed
    again); leaving the ``with`` block removes whatever temporary file is left and turns
    an OSError into a one-line SimInputError.
    """

    def __init__(self, overwrite: bool = False):
        self.overwrite = overwrite
        self.staged: list[tuple[Path, Path]] = []

    def stage(self, final: str | Path) -> Path:
        """Return the temporary path to write ``final`` to (stale parts of it removed first)."""
        final = Path(final)
        remove_stale_parts(final)
        tmp = part_path(final)
        self.staged.append((tmp, final))
        return tmp

    def commit(self) -> list[Path]:
        """Move every staged file onto its final name; on a failure remove what was moved and staged."""
        created: list[Path] = []
        current: Path | None = None
        try:
            for tmp, final in self.staged:
                current = final
                existed = final.exists() or final.is_symlink()
                commit(tmp, final, self.overwrite)
                if not existed:
                    created.append(final)
        except OutputExistsError:
            for path in created:
                remove_path(path)
            raise
        except OSError as exc:
            for path in created:
                remove_path(path)
            raise SimInputError(os_error_message(current or "", exc)) from None
        done = [final for _, final in self.staged]
        self.staged = []
        return done

    def discard(self) -> None:
        """Remove every staged temporary file."""
        for tmp, _ in self.staged:
            remove_path(tmp)
        self.staged = []

    def __enter__(self) -> OutputSet:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        failed = [final for tmp, final in self.staged if tmp.exists()]
        self.discard()
        if isinstance(exc, OSError) and not isinstance(exc, SimInputError):
            target = getattr(exc, "filename", None) or (failed[0] if failed else "the output")
            raise SimInputError(os_error_message(target, exc)) from None


__all__ = [
    "OutputExistsError", "OutputSet", "check_folder_writable", "check_outputs", "commit", "fsync_path",
    "part_path", "read_output_metadata", "record_differences", "remove_path", "remove_stale_parts",
    "settings_record",
]
