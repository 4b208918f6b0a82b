"""Where the dock's pattern comes from, and which frames it is estimated on.

Estimated, loaded from a parameters JSON, or loaded k with the phases refitted; on the
current plane or on the mean over the time points of a time-lapse. Plain functions, no Qt;
they run in workers or on the main thread.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from ..engine.errors import SimInputError
from ..engine.parameters import Optics, PatternParameters, check_pattern_optics, load_parameters_json


def n_time_points(n_frames: int, n_angles: int, n_phases: int, n_z: int) -> int:
    """Time points of a stack of ``n_frames`` frames in that layout (0 when it does not divide)."""
    per_time = n_angles * n_phases * max(n_z, 1)
    return n_frames // per_time if per_time and n_frames % per_time == 0 else 0


def estimation_frames(job: Any) -> np.ndarray:
    """Return the plane (A, P, Y, X) to estimate the pattern on (the time mean as float32).

    ``job.time_mean`` set and more than one time point: the mean over the time points at the
    current z plane (the sum of independent noise realisations of one pattern; a moving
    specimen blurs, the pattern does not). Otherwise the current plane. A lazy (dask) layer is
    read one plane at a time.
    """
    planes = job.planes  # (T·Z, A, P, Y, X)
    n_z = max(int(job.layout.n_z), 1)
    n_t = job.n_planes // n_z
    if not getattr(job, "time_mean", False) or n_t < 2:
        return np.asarray(planes[job.plane])
    z = job.plane % n_z
    total = np.zeros(planes.shape[1:], dtype=np.float64)
    for t in range(n_t):
        total += np.asarray(planes[t * n_z + z], dtype=np.float64)
    return (total / n_t).astype(np.float32)


def check_fits(params: PatternParameters, job: Any) -> None:
    """Refuse parameters that cannot describe the job's frames or optics (one SimInputError)."""
    from ..engine.pipeline import check_params_shape

    layout = job.layout
    try:
        check_params_shape(params, layout.n_angles, layout.n_phases)
    except SimInputError:  # the one check; said in the dock's words
        raise SimInputError(
            f"the loaded parameters describe {params.n_angles} angles × {params.n_phases} phases, but the "
            f"layout is {layout.n_angles} × {layout.n_phases}; load parameters of this acquisition's layout") from None
    check_pattern_optics(params, job.optics)


def load_for_job(path: str | Path, job: Any) -> tuple[PatternParameters, str]:
    """Read a parameters JSON (README schema, e.g. written by ``estimate --json``) for the job.

    Returns the parameters and a note ('' or one sentence) when the file's optics differ from
    the job's: k is physical (cycles/µm) and is used as it is. Raises SimInputError with one
    sentence for an unreadable file, values out of their physical ranges, a layout that does not
    match, or a k beyond what the optics can make or see.
    """
    params, data = load_parameters_json(path)
    check_fits(params, job)
    stated = {k: float(data[k]) for k in ("na", "wavelength_nm", "pixel_size_um") if data.get(k) is not None}
    mine: Optics = job.optics
    differ = [f"{k.replace('_', ' ')} {v:g} (the dock has {getattr(mine, k):g})" for k, v in stated.items()
              if not math.isclose(v, getattr(mine, k), rel_tol=1e-6)]
    note = ("the file states " + ", ".join(differ) + "; k is in cycles/µm and is used as it is") if differ else ""
    return params, note


def loaded_result(params: PatternParameters) -> Any:
    """Wrap loaded parameters as an EstimationResult (no diagnostics: nothing was estimated)."""
    from ..engine.estimate import EstimationResult

    return EstimationResult(params, ())
