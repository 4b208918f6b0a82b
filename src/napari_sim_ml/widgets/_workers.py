"""Work done off the main thread: plain functions over numpy arrays and engine objects.

Nothing here touches a layer, a widget or the viewer. Every function returns
(or, for generators, yields progress and returns) a result object or a
:class:`Failure` carrying one readable sentence, so that errors reach the user
as a notification from the main thread instead of a traceback dialog.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..engine.errors import NoPatternError, SimInputError
from ..engine.io import FrameLayout, arrange_frames
from ..engine.otf import RadialOTF, ideal_otf, otf_from_file
from ..engine.parameters import FilterSettings, Optics, PatternParameters

OTF_CHOICES = ("ideal", "attenuated", "from file")


@dataclass(frozen=True)
class Failure:
    """A worker's error, as the sentence to show."""

    message: str


@dataclass(frozen=True)
class Job:
    """Everything a worker needs, gathered on the main thread (plain data only)."""

    frames: np.ndarray  # (F, Y, X) in file order
    layout: FrameLayout
    optics: Optics
    background: float
    plane: int  # flat index t * n_z + z of the current plane
    otf_kind: str = "ideal"
    otf_attenuation: float = 0.3
    otf_path: str = ""
    layer_name: str = ""  # the raw layer the frames came from
    time_mean: bool = False  # estimate on the mean over the time points (widgets.estimation)
    known: PatternParameters | None = None  # keep these k, refit phases and modulation instead of estimating

    @property
    def planes(self) -> np.ndarray:
        """All planes as (T·Z, A, P, Y, X) (a view when the order allows)."""
        arranged = arrange_frames(self.frames, self.layout)
        return arranged.reshape(-1, *arranged.shape[2:])

    @property
    def n_planes(self) -> int:
        return self.frames.shape[0] // (self.layout.n_angles * self.layout.n_phases)

    def make_otf(self) -> RadialOTF:
        if self.otf_kind == "attenuated":
            return ideal_otf(self.optics, attenuation=self.otf_attenuation)
        if self.otf_kind == "from file":
            if not self.otf_path or self.otf_path in (".", ""):
                raise SimInputError("choose an OTF or PSF file, or switch the OTF to 'ideal'")
            return otf_from_file(self.otf_path, self.optics.pixel_size_um)
        return ideal_otf(self.optics)


@dataclass
class EstimateOutput:
    result: Any  # engine.estimate.EstimationResult
    widefield_spectrum: np.ndarray  # (Y, X) log |FFT|, zero frequency at (Y//2, X//2)
    raw_spectrum: np.ndarray  # (Y, X) mean over frames of log |FFT|


@dataclass
class ReconOutput:
    prepared: Any  # engine.wiener.PreparedReconstruction
    image: np.ndarray  # (2Y, 2X) Wiener-SIM
    widefield: np.ndarray  # (2Y, 2X)
    spectrum: np.ndarray  # (2Y, 2X) log |FFT| of ``image``
    plane: int
    estimate: EstimateOutput | None = None
    trust: tuple[str, ...] = ()  # truth-free figures and warnings (engine.trust), for the status line


@dataclass
class AllOutput:
    images: np.ndarray  # (N, 2Y, 2X)
    widefields: np.ndarray  # (N, 2Y, 2X)
    params: PatternParameters
    estimate: EstimateOutput | None = None


def guarded(action: str, fn: Callable[..., Any], *args: Any) -> Any:
    """fn(*args), with any exception turned into a Failure naming ``action``."""
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


def _reconstruct(job: Job, params: PatternParameters | None, settings: FilterSettings) -> ReconOutput:
    from ..engine.wiener import log_spectrum, prepare_reconstruction, wiener_filter

    estimate = None
    if params is None:
        estimate = _estimate(job)
        params = estimate.result.params
    plane = np.asarray(job.planes[job.plane])
    prepared = prepare_reconstruction(plane, job.optics, params, job.make_otf(), job.background)
    image = wiener_filter(prepared, settings)
    from ..engine.trust import truth_free_report

    report = truth_free_report(image, plane, job.optics, params, job.make_otf(), job.background,
                               noise_variance=prepared.frame_noise_variance)
    trust = tuple(report.lines()) + tuple(f"⚠ do not trust this result: {w}" for w in report.warnings)
    return ReconOutput(prepared, image, prepared.widefield, log_spectrum(image), job.plane, estimate, trust)


def run_estimate(job: Job) -> EstimateOutput | Failure:
    return guarded("Pattern estimation", _estimate, job)


def run_reconstruct(job: Job, params: PatternParameters | None, settings: FilterSettings) -> ReconOutput | Failure:
    return guarded("Reconstruction", _reconstruct, job, params, settings)


def _filter(prepared: Any, settings: FilterSettings) -> tuple[np.ndarray, FilterSettings, float]:
    import time

    from ..engine.wiener import wiener_filter

    t0 = time.perf_counter()
    image = wiener_filter(prepared, settings)
    return image, settings, (time.perf_counter() - t0) * 1e3


def run_filter(prepared: Any, settings: FilterSettings) -> tuple[np.ndarray, FilterSettings, float] | Failure:
    """(image, settings, cost in ms) of one Wiener filter pass over the cached bands."""
    return guarded("Filtering", _filter, prepared, settings)


def run_spectrum(image: np.ndarray) -> np.ndarray | Failure:
    from ..engine.wiener import log_spectrum

    return guarded("Spectrum", log_spectrum, image)


def _all_planes(job: Job, params: PatternParameters | None,
                settings: FilterSettings) -> Generator[int, None, AllOutput]:
    from ..engine.wiener import prepare_reconstruction, wiener_filter

    estimate = None
    if params is None:
        estimate = _estimate(job)
        params = estimate.result.params
    otf = job.make_otf()
    images, widefields = [], []
    for i, plane in enumerate(job.planes):
        prepared = prepare_reconstruction(np.asarray(plane), job.optics, params, otf, job.background)
        images.append(wiener_filter(prepared, settings))
        widefields.append(prepared.widefield)
        yield i + 1
    return AllOutput(np.stack(images), np.stack(widefields), params, estimate)


def run_all(job: Job, params: PatternParameters | None,
            settings: FilterSettings) -> Generator[int, None, AllOutput | Failure]:
    """Reconstruct every plane; yields the number of planes done (cancel = quit at a yield)."""
    try:
        return (yield from _all_planes(job, params, settings))
    except Exception as exc:  # noqa: BLE001 - shown to the user as one sentence
        return guarded("Reconstruct all", _reraise, exc)


def _reraise(exc: Exception) -> None:
    raise exc


class LatestValueRunner:
    """Runs ``fn(*args)`` in a napari worker; while one runs, only the newest request waits.

    ``on_result`` is called on the main thread with each result (a latest-value-wins
    queue: intermediate requests are dropped, so a fast slider never piles up work).
    """

    def __init__(self, fn: Callable[..., Any], on_result: Callable[[Any], None]) -> None:
        self._fn = fn
        self._on_result = on_result
        self._pending: tuple[Any, ...] | None = None
        self._worker: Any = None
        self._generation = 0

    @property
    def busy(self) -> bool:
        return self._worker is not None or self._pending is not None

    def submit(self, *args: Any) -> None:
        self._pending = args
        if self._worker is None:
            self._start()

    def invalidate(self) -> None:
        """Drop the waiting request, and the result of the running one when it arrives."""
        self._generation += 1
        self._pending = None

    def _start(self) -> None:
        from napari.qt.threading import create_worker

        args, self._pending = self._pending, None
        generation = self._generation
        worker = create_worker(self._fn, *args, _start_thread=False)
        worker.returned.connect(lambda out: self._deliver(generation, out))
        worker.finished.connect(self._finished)
        self._worker = worker
        worker.start()

    def _deliver(self, generation: int, out: Any) -> None:
        if generation == self._generation:
            self._on_result(out)

    def _finished(self) -> None:
        self._worker = None
        if self._pending is not None:
            self._start()
