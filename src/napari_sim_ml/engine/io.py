"""Reading raw SIM stacks (TIFF, OME-TIFF, MRC/DV), frame orders, and TIFF output.

Frame orders are strings of the letters P (phase), A (angle) and Z (plane), the
fastest-varying first, as fairSIM names them: ``PAZ`` (phase fastest, then angle,
then z; the common 2-D "angle-major" order a0p0 a0p1 a0p2 a1p0 ...), ``PZA``
(classic OMX), ``ZAP`` (Zeiss Elyra), ``APZ`` ("phase-major": a0p0 a1p0 a2p0 a0p1
...). Frames beyond angles × phases × planes are time points (slowest axis).
Arranged stacks have the shape (T, Z, A, P, Y, X).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import SimInputError
from .metadata import METADATA_KEY, length_to_um  # noqa: F401  (importable from here, as before)
from .rawfile import (  # noqa: F401  (one file's reading lives below io, sequence and omezarr)
    IMMERSION_INDEX,
    RawFile,
    TiffLog,
    _mrc_metadata,
    _tiff_metadata,
    index_frames,
    read_file,
)
from .writers import (  # noqa: F401  (the writers' public home was this module)
    FLOAT32_EXACT,
    _json_default,
    save_json,
    save_tiff,
    tiff_ready,
    write_json,
    write_tiff,
)

ORDER_ALIASES = {"angle-major": "PAZ", "phase-major": "APZ"}
MIN_SIZE = 32


ANGLE_RANGE = (2, 5)  # the pattern angles a layout may have, inclusive


@dataclass(frozen=True)
class FrameLayout:
    """How the frames of a file map onto angles, phases and planes."""

    n_angles: int = 3
    n_phases: int = 3
    n_z: int = 1
    order: str = "PAZ"

    def __post_init__(self) -> None:
        order = ORDER_ALIASES.get(self.order, self.order).upper()
        if len(order) == 2:
            order += "Z"
        if sorted(order) != ["A", "P", "Z"]:
            raise SimInputError(
                f"frame order '{self.order}' is not a permutation of P, A, Z "
                "(e.g. PAZ, PZA, ZAP) or 'angle-major'/'phase-major'"
            )
        object.__setattr__(self, "order", order)
        if not ANGLE_RANGE[0] <= self.n_angles <= ANGLE_RANGE[1]:
            raise SimInputError(f"{self.n_angles} angles: {ANGLE_RANGE[0]} to {ANGLE_RANGE[1]} angles are supported")
        if self.n_phases < 3:
            raise SimInputError(f"{self.n_phases} phases: at least 3 phases are needed")
        if self.n_z < 1:
            raise SimInputError("the number of z planes must be at least 1")

    @property
    def frames_per_set(self) -> int:
        """Frames of one time point: angles × phases × planes."""
        return self.n_angles * self.n_phases * self.n_z


def guess_layout(n_frames: int, n_z: int | None = None) -> FrameLayout:
    """Guess a sensible layout for a frame count: 9 → 3×3, 15 → 3×5, 135 → 3×5×9 (PZA) ..."""
    candidates = [(3, 3), (3, 5), (5, 5), (2, 3), (4, 3)]
    for a, p in candidates:
        if n_frames == a * p * (n_z or 1):
            return FrameLayout(a, p, n_z or 1, "PZA" if (n_z or 1) > 1 else "PAZ")
    for a, p in [(3, 5), (5, 5), (3, 3), (2, 3), (4, 3)]:  # z-stacks are mostly 3-beam 3-D SIM
        if n_frames % (a * p) == 0:
            planes = n_z or n_frames // (a * p)
            return FrameLayout(a, p, planes, "PZA" if planes > 1 else "PAZ")
    raise SimInputError(
        f"{n_frames} frames do not match any usual angles × phases layout; "
        "give --angles and --phases"
    )


def arrange_frames(frames: np.ndarray, layout: FrameLayout) -> np.ndarray:
    """(F, Y, X) frames in file order → (T, Z, A, P, Y, X) view/copy."""
    if frames.ndim != 3:
        raise SimInputError(
            f"a raw SIM stack needs a frame axis; got an array of shape {frames.shape}"
        )
    n, ny, nx = frames.shape
    per = layout.frames_per_set
    if n % per != 0:
        raise SimInputError(
            f"{n} frames cannot be split into {layout.n_angles} angles × {layout.n_phases} "
            f"phases × {layout.n_z} planes ({per} frames per set)"
        )
    sizes = {"P": layout.n_phases, "A": layout.n_angles, "Z": layout.n_z}
    slow_to_fast = layout.order[::-1]
    shaped = frames.reshape(n // per, *[sizes[c] for c in slow_to_fast], ny, nx)
    perm = [0] + [1 + slow_to_fast.index(c) for c in "ZAP"] + [4, 5]
    return shaped.transpose(perm)


def validate_plane(stack: np.ndarray) -> None:
    """Check one plane (A, P, Y, X) and raise SimInputError with a clear sentence."""
    if stack.ndim != 4:
        raise SimInputError(f"expected angles × phases × Y × X, got shape {stack.shape}")
    if min(stack.shape[-2:]) < MIN_SIZE:
        raise SimInputError(
            f"frames of {stack.shape[-2]} × {stack.shape[-1]} px are too small; "
            f"at least {MIN_SIZE} × {MIN_SIZE} px are needed"
        )
    if not np.isfinite(stack).all():
        raise SimInputError("the stack contains NaN or infinite values")
    if float(np.ptp(stack)) == 0.0:
        raise SimInputError("the stack is constant: there is no image to reconstruct")


def read_image_with_pixel_size(path: str | Path) -> tuple[np.ndarray, float | None]:
    """Any TIFF/MRC image with its pixel size in µm (None when unknown)."""
    raw = read_raw(path, require_frames=False, allow_complex=True)  # a radial OTF is complex
    return raw.frames, raw.pixel_size_um


def read_raw(path: str | Path, require_frames: bool = True, allow_complex: bool = False) -> RawFile:
    """Read a raw SIM file; all leading axes are flattened into frames in file order.

    Complex data are refused unless ``allow_complex`` (OTF files).
    """
    from .sequence import is_sequence, is_zarr_store  # folders, glob patterns and OME-Zarr stores

    if is_sequence(path):
        from .sequence import read_sequence

        return read_sequence(path)
    path = Path(path)
    if is_zarr_store(path):
        from .omezarr import read_omezarr

        return read_omezarr(path)
    return read_file(path, require_frames, allow_complex)
