"""Mosaic frames: raw data stored as one image per plane tiling its angles × phases frames.

Nikon N-SIM writes each plane of raw SIM data as a single image in which the raw
frames are tiled: **phases along x (columns, left to right), angles along y (rows,
top to bottom)** — a 3 × 3 mosaic for 2-D SIM (3 angles × 3 phases), 3 × 5 for 3-D
SIM (3 angles × 5 phases). Splitting the mosaic row by row, tile by tile, gives the
frames in the order a0p0 a0p1 a0p2 a1p0 … : phase fastest, then angle, i.e. this
plugin's ``PAZ`` order, with the file's own frames (z planes, time points) slower.
"""

from __future__ import annotations

import re
from typing import Any

from .errors import SimInputError


def parse_mosaic(spec: str) -> tuple[int, int]:
    """'3x3' / '3x5' (rows × columns = angles × phases) → (rows, cols)."""
    m = re.fullmatch(r"\s*(\d+)\s*[x×X,]\s*(\d+)\s*", str(spec))
    if not m or int(m.group(1)) < 1 or int(m.group(2)) < 1 or int(m.group(1)) * int(m.group(2)) < 2:
        raise SimInputError(f"--mosaic takes rows x columns (angles x phases), e.g. 3x3 or 3x5, not '{spec}'")
    return int(m.group(1)), int(m.group(2))


def split_mosaic(frames: Any, rows: int, cols: int) -> Any:
    """(F, rows·h, cols·w) mosaics → (F·rows·cols, h, w) frames, tiles row by row (numpy or dask).

    Tile (r, c) of mosaic f becomes frame ``(f·rows + r)·cols + c``: for an N-SIM
    mosaic (rows = angles, columns = phases) that is the PAZ order.
    """
    if frames.ndim == 2:
        frames = frames[None]
    if frames.ndim != 3:
        raise SimInputError(f"a mosaic stack needs (frames, Y, X); got shape {frames.shape}")
    n, ny, nx = frames.shape
    if ny % rows or nx % cols:
        raise SimInputError(f"images of {ny} × {nx} px cannot be split into a {rows} × {cols} mosaic "
                            f"(the height must divide by {rows} and the width by {cols})")
    h, w = ny // rows, nx // cols
    tiles = frames.reshape(n, rows, h, cols, w).transpose(0, 1, 3, 2, 4)
    return tiles.reshape(n * rows * cols, h, w)


def apply_mosaic(raw: Any, spec: str | None) -> Any:
    """Return the RawFile with its mosaics split into frames (``spec`` 'RxC'); unchanged for None."""
    if not spec:
        return raw
    from .io import RawFile

    rows, cols = parse_mosaic(spec)
    extra = {k: v for k, v in raw.extra.items() if k != "layout"}
    extra["mosaic"] = {"rows": rows, "cols": cols, "order": "rows = angles, columns = phases (N-SIM)"}
    return RawFile(raw.path, split_mosaic(raw.frames, rows, cols), raw.pixel_size_um, raw.wavelength_nm,
                   raw.na, extra, z_step_um=raw.z_step_um)


def mosaic_layout(spec: str) -> dict[str, Any]:
    """Return the layout a mosaic implies: angles = rows, phases = columns, order PAZ."""
    rows, cols = parse_mosaic(spec)
    return {"n_angles": rows, "n_phases": cols, "order": "PAZ"}
