"""The SIM dock's state as a Qt-free, evented model: inputs, results and a version.

:class:`SimSession` holds what the dock's fields say (the raw data, layout, optics,
camera offset, OTF choice, current plane, filter and PINN settings) and what was
computed from them (the estimate, the parameters in use, the prepared bands of the
current plane, its filtered image, the all-planes result, the PINN and denoiser
outputs). Every field is a psygnal signal (``session.events.<field>``): the dock's
widgets observe the results and only gather inputs, start workers and place layers.

Invalidation: setting an input drops the results that depend on it (:data:`DROPS`):

* the data, its source, layout, optics, offset or OTF drop every result and bump
  ``version`` (a computation started before is then stale: :meth:`SimSession.is_current`);
* the current plane drops the prepared bands, the filtered image and the learned
  outputs of the old plane, and keeps the estimate and the all-planes result;
* the filter settings (the sliders) drop only the filtered image: the prepared bands
  stay and a re-filter costs milliseconds;
* the PINN settings drop only the PINN result;
* loaded parameters (``loaded``, a calibration from a parameters JSON), "keep k, refit
  phases" (``keep_k``) and "estimate on the time mean" (``time_mean``) change where the
  pattern comes from: they drop every result and bump ``version`` too. Loaded parameters
  are an input, so they survive a change of the data (a calibration is reused on other data).

The same model runs without a viewer, e.g. in a notebook::

    session = SimSession.from_file("raw.tif")
    session.run_estimate()
    session.run_reconstruct()
    session.filter = replace(session.filter, wiener=0.1)  # the bands stay
    image = session.run_filter()
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from psygnal import evented

from ..engine.errors import SimInputError
from ..engine.io import FrameLayout, arrange_frames
from ..engine.parameters import FilterSettings, Optics, PatternParameters
from ..engine.steps import run_to_end
from .tasks import AllOutput, EstimateOutput, Failure, Job, ReconOutput, frames_of

DATASET_INPUTS = ("data", "source", "layout", "optics", "background", "otf", "loaded", "keep_k", "time_mean")
RESULTS = ("estimate", "params", "job", "prepared", "reconstruction", "image", "all_planes", "pinn_result",
           "denoised")
PLANE_RESULTS = ("prepared", "reconstruction", "image", "pinn_result", "denoised")
#: input field -> the result fields a change of it throws away
DROPS: dict[str, tuple[str, ...]] = {
    **{name: RESULTS for name in DATASET_INPUTS},
    "plane": PLANE_RESULTS,
    "filter": ("image",),
    "pinn": ("pinn_result",),
}
_IDENTITY = {name: operator.is_ for name in ("data", *RESULTS)}  # never compare arrays by value


@evented(equality_operators=_IDENTITY)
@dataclass(eq=False)
class SimSession:
    """Inputs, results and a version of one SIM reconstruction session.

    Inputs: ``data`` (the raw image's array, any shape (..., Y, X); lazy arrays stay
    lazy), ``source`` (its name), ``layout``, ``optics``, ``background`` (camera
    offset, counts), ``otf`` (the OTF field: kind, attenuation a, file; built with
    :meth:`~napari_sim_ml.engine.pipeline.OtfSpec.from_choice` when a job runs), ``plane`` (flat index t·Z + z),
    ``filter`` (:class:`FilterSettings`), ``pinn`` (PinnSettings or None), ``loaded``
    (PatternParameters from a file, ``loaded_name`` its name), ``keep_k`` (refit the phases at
    the loaded k), ``time_mean`` (estimate on the mean over the time points).
    Results: ``estimate`` (EstimateOutput), ``params`` (PatternParameters in use),
    ``job`` (the Job the latest results were made from), ``prepared`` (bands of
    ``plane``), ``reconstruction`` (ReconOutput), ``image`` ((2Y, 2X) filtered with
    ``filter``), ``all_planes`` (AllOutput), ``pinn_result``, ``denoised``.
    ``version`` counts dataset changes; ``base`` names the data the results' layers
    belong to and survives invalidation.
    """

    data: Any = None
    source: str = ""
    layout: FrameLayout = field(default_factory=FrameLayout)
    optics: Optics = field(default_factory=Optics)
    background: float = 0.0
    otf: tuple[str, float, str] = ("ideal", 0.3, "")
    plane: int = 0
    filter: FilterSettings = field(default_factory=FilterSettings)
    pinn: Any = None
    loaded: PatternParameters | None = None
    loaded_name: str = ""
    keep_k: bool = False
    time_mean: bool = False
    estimate: EstimateOutput | None = None
    params: PatternParameters | None = None
    job: Job | None = None
    prepared: Any = None
    reconstruction: ReconOutput | None = None
    image: np.ndarray | None = None
    all_planes: AllOutput | None = None
    pinn_result: Any = None
    denoised: Any = None
    version: int = 0
    base: str = ""
    if TYPE_CHECKING:  # added by @evented: one signal per field
        events: ClassVar[Any]

    def __post_init__(self) -> None:
        events = self.events
        for name in DROPS:
            getattr(events, name).connect(lambda *_args, _name=name: self._changed(_name))

    # ------------------------------------------------------------ invalidation
    def _changed(self, name: str) -> None:
        for result in DROPS[name]:
            if getattr(self, result) is not None:
                setattr(self, result, None)
        if name in DATASET_INPUTS:
            self.version += 1

    def is_current(self, version: int) -> bool:
        """Tell whether no dataset input changed since ``version`` was read."""
        return version == self.version

    def drop_results(self) -> None:
        """Throw every result away and make running computations stale (as a dataset change does)."""
        self._changed("data")

    # ------------------------------------------------------------ inputs
    @property
    def frames(self) -> Any:
        """The raw frames (F, Y, X) in file order, unread (None without data)."""
        return None if self.data is None else frames_of(self.data)

    def make_job(self, plane: int | None = None) -> Job:
        """Build a :class:`Job` from the current inputs; raises SimInputError with a sentence on bad input."""
        if self.data is None:
            raise SimInputError("select a raw SIM layer first (open a raw stack or File > Open Sample)")
        if len(self.data.shape) < 3:
            raise SimInputError(
                f"layer '{self.source}' is a single 2-D image; a raw SIM stack needs "
                f"angles × phases frames (e.g. 9 frames for 3 angles × 3 phases)")
        frames = self.frames
        arrange_frames(frames, self.layout)  # raises on a wrong frame count (lazily: nothing is read)
        known = self.loaded if self.refits else None
        kind, attenuation, path = self.otf
        job = Job(frames, self.layout, self.optics, float(self.background), 0, kind, float(attenuation), str(path),
                  self.source, bool(self.time_mean), known)
        index = self.plane if plane is None else plane
        if not 0 <= index < job.n_planes:
            raise SimInputError(f"plane {index} does not exist: the stack has {job.n_planes} planes")
        return replace(job, plane=index)

    @property
    def refits(self) -> bool:
        """Whether runs keep the loaded k and refit the phases (instead of estimating)."""
        return self.loaded is not None and bool(self.keep_k)

    def params_for_run(self, job: Job) -> PatternParameters | None:
        """Return the parameters a reconstruction of ``job`` uses, or None (its worker estimates).

        The estimate of these inputs, else the loaded parameters (checked against the job;
        None when they are refitted: the worker does it with ``job.known``).
        """
        from .estimation import check_fits

        if self.estimate is not None:
            return self.estimate.result.params
        if self.loaded is None:
            return None
        check_fits(self.loaded, job)
        return None if self.refits else self.loaded

    def load(self, params: PatternParameters | None, name: str) -> None:
        """Use loaded parameters (a calibration) from now on; every result is dropped."""
        self.loaded_name = name
        self.loaded = params

    def use_result(self, result: Any) -> None:
        """Use an EstimationResult made here (e.g. with typed values) as the estimate."""
        from dataclasses import replace as _replace

        old = self.estimate
        self.params = result.params
        self.estimate = _replace(old, result=result) if old is not None else EstimateOutput(result, None, None)

    # ------------------------------------------------------------ results
    def accept_estimate(self, out: EstimateOutput, job: Job | None) -> None:
        """Keep an estimate (and its parameters) made from ``job`` (None: the current job)."""
        if job is not None:
            self.base, self.job = job.layer_name, job
        self.params = out.result.params
        self.estimate = out

    def accept_reconstruction(self, out: ReconOutput, job: Job) -> None:
        """Keep one plane's reconstruction (and the estimate it made, if any)."""
        if out.estimate is not None:
            self.accept_estimate(out.estimate, job)
        self.plane = out.plane  # another plane drops the old plane's bands first
        self.base, self.params, self.job = job.layer_name, out.prepared.params, job
        self.prepared = out.prepared
        self.reconstruction = out
        self.image = out.image

    def accept_image(self, image: np.ndarray, settings: FilterSettings) -> bool:
        """Keep a re-filtered image if it was made with the current filter settings."""
        if self.prepared is None or settings != self.filter:
            return False
        self.image = image
        return True

    def accept_all(self, out: AllOutput, job: Job) -> None:
        """Keep the all-planes result (and the estimate it made, if any)."""
        if out.estimate is not None:
            self.accept_estimate(out.estimate, job)
        self.base, self.params = job.layer_name, out.params
        self.all_planes = out

    # ------------------------------------------------------------ running without a viewer
    @classmethod
    def from_file(cls, path: str | Path, **inputs: Any) -> SimSession:
        """Open a session on a raw file, lazily (frames are read when needed).

        The optics and layout are the ones its metadata states (or the guessed layout);
        ``inputs`` override fields.
        """
        from ..engine.io import guess_layout
        from ..engine.lazy import open_lazy

        raw, _ = open_lazy(path)
        meta = raw.metadata  # engine.metadata schema: ``background`` (``camera_offset`` in old raw files)
        stored = meta.layout
        layout = FrameLayout(**stored) if isinstance(stored, dict) else guess_layout(raw.frames.shape[0])
        optics = Optics(raw.na or 1.4, raw.wavelength_nm or 525.0, raw.pixel_size_um or 0.08)
        background = float(meta.background or 0.0)
        fields = {"data": raw.frames, "source": Path(path).stem, "layout": layout, "optics": optics,
                  "background": background, **inputs}
        return cls(**fields)

    def run_estimate(self) -> EstimateOutput:
        """Estimate the pattern on the current plane, here; raises SimInputError on failure."""
        from .tasks import run_estimate

        job = self.make_job()
        self.accept_estimate(_ok(run_estimate(job)), job)
        assert self.estimate is not None
        return self.estimate

    def run_reconstruct(self) -> np.ndarray:
        """Reconstruct the current plane (estimating first when no parameters are known)."""
        from .tasks import run_reconstruct

        job = self.make_job()
        self.accept_reconstruction(_ok(run_reconstruct(job, self.params, self.filter)), job)
        assert self.image is not None
        return self.image

    def run_filter(self) -> np.ndarray:
        """Filter the cached bands with the current filter settings (the slider step)."""
        from .tasks import run_filter

        if self.prepared is None:
            raise SimInputError("reconstruct first: there are no prepared bands to filter")
        image, settings, _ = _ok(run_filter(self.prepared, self.filter))
        self.accept_image(image, settings)
        return image

    def run_all(self) -> AllOutput:
        """Reconstruct every plane with the current parameters and filter settings."""
        from .tasks import run_all

        job = self.make_job()
        self.accept_all(_ok(run_to_end(run_all(job, self.params, self.filter))), job)
        assert self.all_planes is not None
        return self.all_planes

    def run_pinn(self) -> Any:
        """Fit the PINN on the current plane with ``pinn`` settings (default settings when None)."""
        from ..engine.pinn import PinnSettings
        from .learned import run_pinn

        if self.params is None:
            raise SimInputError("estimate the pattern first: the PINN needs the illumination")
        if self.pinn is None:
            self.pinn = PinnSettings()
        version, plane = self.version, self.plane
        result = _ok(run_to_end(run_pinn(self.make_job(), self.params, self.pinn)))
        if self.is_current(version) and self.plane == plane:
            self.pinn_result = result
        return result


def _ok(out: Any) -> Any:
    """``out``, or SimInputError with its sentence when it is a Failure."""
    if isinstance(out, Failure):
        raise SimInputError(out.message)
    return out
