"""What an output records of how it was made: its metadata read back, and the batch's settings record.

:func:`read_output_metadata` reads the plugin's record of a file it wrote (ImageJ TIFF,
OME-TIFF, OME-Zarr); :func:`settings_record` / :func:`record_differences` say whether a
rerun asks for the same output. Re-exported by :mod:`.outputs`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any


def read_output_metadata(path: str | Path) -> dict[str, Any] | None:
    """Read the plugin's metadata of an output it wrote, or None.

    From the ImageJ TIFF 'Info', the OME-TIFF Description or the zarr attributes; None when the
    file is not readable or not ours. For an OME-TIFF, also None when it holds fewer pages than its OME header says.
    """
    from .metadata import METADATA_KEY

    path = Path(path)
    try:
        if path.is_dir():
            attrs = json.loads((path / "zarr.json").read_text()).get("attributes", {})
            return attrs.get(METADATA_KEY)
        import logging

        import tifffile

        logging.getLogger("tifffile").disabled = True
        try:
            with tifffile.TiffFile(path) as tif:
                if tif.is_ome and tif.ome_metadata:
                    import xml.etree.ElementTree as ET

                    root = ET.fromstring(tif.ome_metadata)
                    desc = next((el.text for el in root.iter() if el.tag.endswith("Description")), None)
                    pixels = next((el for el in root.iter() if el.tag.endswith("Pixels")), None)
                    if pixels is not None:
                        n = int(pixels.get("SizeT", 1)) * int(pixels.get("SizeZ", 1)) * int(pixels.get("SizeC", 1))
                        if len(tif.pages) < n:
                            return None
                    return json.loads(desc).get(METADATA_KEY) if desc else None
                info = (tif.imagej_metadata or {}).get("Info")
                return json.loads(info).get(METADATA_KEY) if isinstance(info, str) else None
        finally:
            logging.getLogger("tifffile").disabled = False
    except Exception:  # unreadable or foreign: the caller reports it
        return None


# ---------------------------------------------------------------- settings recorded in outputs
RECORD_IGNORED = frozenset({"inputs", "output_dir", "scheduler", "workers", "overwrite", "no_progress", "func",
                            "command"})


def _file_fingerprint(path: Path) -> dict[str, Any]:
    import hashlib

    st = path.stat()
    if st.st_size > 64 * 2**20:
        return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}
    return {"sha256": hashlib.sha256(path.read_bytes()).hexdigest()}


def settings_record(options: dict[str, Any], ignore: Iterable[str] = RECORD_IGNORED) -> dict[str, Any]:
    """Return the options that determine an output, JSON-ready.

    A command's parsed flags without ``ignore``; a flag naming a file (parameters, OTF ...) is
    recorded by its content hash, so an edited parameters file counts as other settings.
    """
    ignore = set(ignore)
    out: dict[str, Any] = {}
    for key, value in sorted(options.items()):
        if key in ignore or callable(value):
            continue
        if isinstance(value, str) and value and Path(value).is_file():
            value = {"file": Path(value).name, **_file_fingerprint(Path(value))}
        elif not (value is None or isinstance(value, (bool, int, float, str, list, tuple))):
            value = repr(value)
        out[key] = list(value) if isinstance(value, tuple) else value
    return out


def record_differences(stored: dict[str, Any], wanted: dict[str, Any]) -> list[str]:
    """Names of the options that differ between two :func:`settings_record` dicts."""
    return sorted(k for k in set(stored) | set(wanted) if stored.get(k) != wanted.get(k))
