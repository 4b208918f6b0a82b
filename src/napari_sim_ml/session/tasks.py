"""The dock's computations as plain functions (no Qt, no napari): run in a worker or inline.

Every function takes plain data (a :class:`Job`, engine objects, numpy arrays) and
returns a result object or a :class:`Failure` carrying one readable sentence, so that
errors reach the user as a notification (or, in a script, as a
:class:`~napari_sim_ml.engine.errors.SimInputError`) instead of a traceback dialog.
A lazy stack is read here, one plane at a time, never whole.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..engine.errors import NoPatternError, SimInputError
from ..engine.io import FrameLayout, arrange_frames
from ..engine.methods import MethodSettings, Outputs, PlaneResult, reconstruct_plane
from ..engine.otf import RadialOTF
from ..engine.parameters import FilterSettings, Optics, PatternParameters
from ..engine.pipeline import OtfSpec


@dataclass(frozen=True)
class Failure:
    """A computation's error, as the sentence to show."""

    message: str


def frames_of(data: Any) -> Any:
    """(F, Y, X) frames of an image's data in file order, without reading any pixel.

    A numpy array gives a view; a dask array a lazy reshape; any other array-like with
    ``shape``/``dtype``/indexing (zarr, h5py, a lazy frame source) is wrapped in a dask
    array with one frame per chunk, so that only the frames asked for are ever read.
    """
    if isinstance(data, np.ndarray):
        return data.reshape(-1, *data.shape[-2:])
    if not hasattr(data, "dask"):
        import dask.array as da

        data = da.from_array(data, chunks=(*(1,) * (len(data.shape) - 2), *data.shape[-2:]), asarray=False)
    return data.reshape(-1, *data.shape[-2:])


@dataclass(frozen=True)
class Job:
    """Everything a computation needs (plain data only): the request of one run."""

    frames: Any  # (F, Y, X) in file order: a numpy array or a lazy (dask) array
    layout: FrameLayout
    optics: Optics
    background: float
    plane: int  # flat index t * n_z + z of the current plane
    otf_kind: str = "ideal"
    otf_attenuation: float = 0.3
    otf_path: str = ""
    layer_name: str = ""  # the raw layer (or file) the frames came from
    time_mean: bool = False  # estimate on the mean over the time points (session.estimation)
    known: PatternParameters | None = None  # keep these k, refit phases and modulation instead of estimating

    @property
    def planes(self) -> Any:
        """All planes as (T·Z, A, P, Y, X) (a view, or lazy, when the order allows)."""
        arranged = arrange_frames(self.frames, self.layout)
        return arranged.reshape(-1, *arranged.shape[2:])

    @property
    def n_planes(self) -> int:
        """Number of planes (time points × z planes)."""
        return self.frames.shape[0] // (self.layout.n_angles * self.layout.n_phases)

    @property
    def otf(self) -> OtfSpec:
        """The OTF of this job (raises SimInputError for 'from file' without a file)."""
        return OtfSpec.from_choice(self.otf_kind, self.otf_attenuation, self.otf_path)

    def make_otf(self) -> RadialOTF:
        """Build the chosen OTF for this job's optics (in the worker: errors become a Failure)."""
        return self.otf.make(self.optics)

    def plane_frames(self, plane: int | None = None) -> np.ndarray:
        """Read one plane (A, P, Y, X) (default: the current one); a lazy stack reads its frames only."""
        return np.asarray(self.planes[self.plane if plane is None else plane])


def plane_of_frame(frame: int, n_frames: int, layout: FrameLayout) -> int:
    """Flat plane index (t·Z + z) of the plane holding raw frame ``frame`` (file order)."""
    index = arrange_frames(np.arange(n_frames).reshape(-1, 1, 1), layout)
    per_plane = layout.n_angles * layout.n_phases
    return int(np.nonzero(index.reshape(n_frames // per_plane, -1) == frame)[0][0])


@dataclass
class EstimateOutput:
    """An estimate with the spectra the dock shows."""

    result: Any  # engine.estimate.EstimationResult
    widefield_spectrum: np.ndarray | None  # (Y, X) log |FFT|, zero at (Y//2, X//2); None: typed/loaded
    raw_spectrum: np.ndarray | None  # (Y, X) mean over frames of log |FFT|


@dataclass
class ReconOutput:
    """One plane reconstructed: the cached bands, the filtered image and its figures."""

    prepared: Any  # engine.wiener.PreparedReconstruction
    image: np.ndarray  # (2Y, 2X) Wiener-SIM
    widefield: np.ndarray  # (2Y, 2X)
    spectrum: np.ndarray  # (2Y, 2X) log |FFT| of ``image``
    plane: int
    estimate: EstimateOutput | None = None
    trust: tuple[str, ...] = ()  # truth-free figures and warnings (engine.trust), for the status line


@dataclass
class AllOutput:
    """Every plane reconstructed with one set of parameters and filter settings."""

    images: np.ndarray  # (N, 2Y, 2X)
    widefields: np.ndarray  # (N, 2Y, 2X)
    params: PatternParameters
    estimate: EstimateOutput | None = None


def guarded(action: str, fn: Callable[..., Any], *args: Any) -> Any:
    """Call ``fn(*args)``, with any exception turned into a Failure naming ``action``."""
    try:
        return fn(*args)
    except NoPatternError as exc:  # the engine's sentence names CLI flags; say it in the dock's words
        return Failure(f"no illumination pattern detected for angle {exc.angle_index} (pattern quality "
                       f"{exc.quality:.1f}, needs at least {exc.threshold:.1f}); check the frame order, the "
                       "numbers of angles and phases, the optics and the camera offset")
    except SimInputError as exc:
        return Failure(str(exc))
    except MemoryError:
        return Failure(f"{action} ran out of memory; try a smaller region or fewer planes")
    except Exception as exc:  # noqa: BLE001 - shown to the user as one sentence
        return Failure(f"{action} failed: {type(exc).__name__}: {exc}")


def offset_warning(frames: Any, background: float) -> str | None:
    """Warn when the camera offset is above most pixels; None when it is not.

    Such an offset is a value kept from another camera, or the data are already
    offset-corrected. Reads 9 frames at most.
    """
    if background <= 0:
        return None
    step = max(1, frames.shape[0] // 9)
    sample = np.asarray(frames[::step][:9, ::4, ::4], dtype=np.float64)
    median = float(np.median(sample))
    if background < median:
        return None
    return (f"the camera offset {background:g} is above most pixels (median {median:.3g}); subtracting it leaves "
            "little or no signal: check the offset")


def run_offset_check(job: Job) -> str | None:
    """:func:`offset_warning` of a job, or None when its frames cannot be read."""
    out = guarded("Offset check", offset_warning, job.frames, job.background)
    return out if isinstance(out, str) else None


def _estimate(job: Job) -> EstimateOutput:
    from ..engine.bands import preprocess
    from ..engine.estimate import estimate_pattern
    from ..engine.wiener import log_spectrum
    from .estimation import estimation_frames

    plane = estimation_frames(job)  # the current plane (a lazy layer reads it only) or the time mean
    if job.known is not None:
        from ..engine.refit import refit_with_known_k

        result = refit_with_known_k(plane, job.optics, job.known, otf=job.make_otf(), background=job.background)
    else:
        result = estimate_pattern(plane, job.optics, otf=job.make_otf(), background=job.background)
    frames = preprocess(plane, job.background)
    widefield = log_spectrum(frames.mean(axis=(0, 1)))
    flat = frames.reshape(-1, *frames.shape[-2:])
    raw = np.mean([log_spectrum(f) for f in flat], axis=0).astype(np.float32)
    return EstimateOutput(result, widefield, raw)


def _wiener_plane(job: Job, frames: np.ndarray, index: int, params: PatternParameters, settings: FilterSettings,
                  otf: RadialOTF, spectra: bool = False) -> PlaneResult:
    """Reconstruct plane ``index`` from its frames (A, P, Y, X) with the pipeline's per-plane method.

    The CLI and batch reconstruct every plane with the same function.
    """
    return reconstruct_plane(frames, job.optics, params, otf, job.background,
                             MethodSettings("wiener", "wiener", settings), Outputs(widefield=True, spectra=spectra),
                             index=index)


def _run_params(job: Job, params: PatternParameters | None) -> tuple[PatternParameters, EstimateOutput | None]:
    """Return the parameters a run uses (``params``, else an estimate on the job's plane) and that estimate."""
    if params is not None:
        return params, None
    estimate = _estimate(job)
    return estimate.result.params, estimate


def _reconstruct(job: Job, params: PatternParameters | None, settings: FilterSettings) -> ReconOutput:
    from ..engine.trust import truth_free_report

    params, estimate = _run_params(job, params)
    otf = job.make_otf()
    frames = job.plane_frames()
    res = _wiener_plane(job, frames, job.plane, params, settings, otf, spectra=True)
    report = truth_free_report(res.image, frames, job.optics, params, otf, job.background,
                               noise_variance=res.noise_variance)
    trust = tuple(report.lines()) + tuple(f"⚠ do not trust this result: {w}" for w in report.warnings)
    assert res.widefield is not None and res.spectrum is not None  # both asked for
    return ReconOutput(res.prepared, res.image, res.widefield, res.spectrum, job.plane, estimate, trust)


def run_estimate(job: Job) -> EstimateOutput | Failure:
    """Estimate the pattern on the job's current plane."""
    return guarded("Pattern estimation", _estimate, job)


def run_reconstruct(job: Job, params: PatternParameters | None, settings: FilterSettings) -> ReconOutput | Failure:
    """Reconstruct the job's current plane (estimating the pattern first when ``params`` is None)."""
    return guarded("Reconstruction", _reconstruct, job, params, settings)


def _filter(prepared: Any, settings: FilterSettings) -> tuple[np.ndarray, FilterSettings, float]:
    from ..engine.wiener import wiener_filter

    t0 = time.perf_counter()
    image = wiener_filter(prepared, settings)
    return image, settings, (time.perf_counter() - t0) * 1e3


def run_filter(prepared: Any, settings: FilterSettings) -> tuple[np.ndarray, FilterSettings, float] | Failure:
    """Filter the cached bands once: (image, settings, cost in ms)."""
    return guarded("Filtering", _filter, prepared, settings)


def run_spectrum(image: np.ndarray) -> np.ndarray | Failure:
    """Log spectrum of a reconstruction, zero frequency centred."""
    from ..engine.wiener import log_spectrum

    return guarded("Spectrum", log_spectrum, image)


def _all_planes(job: Job, params: PatternParameters | None,
                settings: FilterSettings) -> Generator[int, None, AllOutput]:
    params, estimate = _run_params(job, params)
    otf = job.make_otf()
    images, widefields = [], []
    for i in range(job.n_planes):  # one plane read at a time: a lazy stack is never read whole
        res = _wiener_plane(job, job.plane_frames(i), i, params, settings, otf)
        images.append(res.image)
        widefields.append(res.prepared.widefield)
        yield i + 1
    return AllOutput(np.stack(images), np.stack(widefields), params, estimate)


def run_all(job: Job, params: PatternParameters | None,
            settings: FilterSettings) -> Generator[int, None, AllOutput | Failure]:
    """Reconstruct every plane; yields the number of planes done (cancel = close at a yield)."""
    try:
        return (yield from _all_planes(job, params, settings))
    except Exception as exc:  # noqa: BLE001 - shown to the user as one sentence
        return guarded("Reconstruct all", _reraise, exc)


def _reraise(exc: Exception) -> None:
    raise exc
