"""One reconstruction pipeline under every front end: a request, and the steps that run it.

A :class:`ReconstructionRequest` says everything about one acquisition's reconstruction:
the frames (a numpy array or a lazy dask stack, in file order) with their
:class:`~napari_sim_ml.engine.io.FrameLayout` and optics, the background, the OTF
(:class:`OtfSpec`), the pattern parameters or how to estimate them
(:class:`EstimationSettings`), the method with its settings (:class:`MethodSettings`) and the
outputs wanted (:class:`Outputs`). The command line, batch and the dock build one and call:

* :func:`estimate` — the pattern parameters (given, estimated on one plane or the time
  mean, per time point, or with k kept from known parameters);
* :func:`iter_planes` — the planes reconstructed one by one, as :class:`PlaneResult` (a
  generator: a front end reports progress between planes and may stop early);
* :func:`reconstruction_metadata` — the :class:`~napari_sim_ml.engine.metadata.SimMetadata`
  every output records;
* :func:`run` — all three, the outputs stacked (scripts, notebooks);
* :func:`plane_job` — the picklable per-plane job the batch runs in dask tasks.

The shape check of parameters against a stack, the filter settings, the PINN settings and
the OTF choice are made here only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import SimInputError
from .io import FrameLayout, arrange_frames, validate_plane
from .metadata import ImageOptics, SimMetadata
from .methods import (  # noqa: F401  (the request API's parts, importable from here)
    FILTER_FORMS,
    METHODS,
    MethodSettings,
    Outputs,
    PlaneResult,
    fit_pinn_plane,
    pinn_settings,
    reconstruct_plane,
)
from .otf import RadialOTF, ideal_otf, otf_from_file
from .parameters import FilterSettings, Optics, PatternParameters

# ---------------------------------------------------------------- the request
OTF_CHOICES = ("ideal", "attenuated", "from file")  # the dock's OTF field, read by OtfSpec.from_choice


@dataclass(frozen=True)
class OtfSpec:
    """Which detection OTF to use.

    A measured one (``path``: a radial OTF MRC or a PSF image), else the ideal OTF of the
    optics, attenuated as fairSIM's ideal(ρ)·a^ρ when ``attenuation`` (a in (0, 1]) is given.
    """

    path: str | None = None
    attenuation: float | None = None

    @classmethod
    def from_choice(cls, kind: str, attenuation: float | None = None, path: str | None = None) -> OtfSpec:
        """Build the dock's choice: 'ideal', 'attenuated' (``attenuation``) or 'from file' (``path``)."""
        if kind == "from file":
            if not path or str(path).strip() in ("", "."):
                raise SimInputError("choose an OTF or PSF file, or switch the OTF to 'ideal'")
            return cls(path=str(path))
        return cls(attenuation=attenuation if kind == "attenuated" else None)

    def make(self, optics: Optics) -> RadialOTF:
        """Return the OTF for ``optics`` (a file's OTF is resampled to its camera pixel size)."""
        if self.path:
            return otf_from_file(self.path, optics.pixel_size_um)
        return ideal_otf(optics, attenuation=self.attenuation)


@dataclass(frozen=True)
class EstimationSettings:
    """How to find the pattern when no parameters are given.

    time: time point index to estimate on, or 'mean' (the mean over all time points).
    z: plane to estimate on (None: the middle one). n_orders: 1 (2-beam), 2 (3-beam) or
    None (from the phase count). consistency_prior: prefer equal |k| and angles 180°/n apart.
    per_time_point: estimate every time point again (a drifting pattern).
    keep_k: parameters whose k (cycles/µm) are kept; only phases and modulation are refitted
    (a calibration reused, ``--k-from``).
    """

    time: int | str = 0
    z: int | None = None
    n_orders: int | None = None
    consistency_prior: bool = True
    per_time_point: bool = False
    keep_k: PatternParameters | None = None

    def __post_init__(self) -> None:
        if self.time != "mean" and not isinstance(self.time, (int, np.integer)):
            raise SimInputError(f"the estimation time point is an index or 'mean', not {self.time!r}")


@dataclass(frozen=True)
class ReconstructionRequest:
    """Everything about one acquisition's reconstruction.

    frames: (F, Y, X) raw frames in file order (numpy, or lazy: a dask array or the
    ``lazy.FrameSource`` of a file), arranged by
    ``layout`` into (T, Z, A, P, Y, X). optics: camera pixel size, NA, wavelength.
    background: camera offset, counts. params: given parameters (one, or one per time point),
    else None and ``estimation`` says how they are found. source: the raw file (recorded).
    z_step_um: distance between z planes, µm (recorded for z-stacks).
    """

    frames: Any
    layout: FrameLayout
    optics: Optics
    background: float = 0.0
    otf: OtfSpec = field(default_factory=OtfSpec)
    params: PatternParameters | tuple[PatternParameters, ...] | None = None
    estimation: EstimationSettings = field(default_factory=EstimationSettings)
    method: MethodSettings = field(default_factory=MethodSettings)
    outputs: Outputs = field(default_factory=Outputs)
    source: str | None = None
    z_step_um: float | None = None

    def planes(self) -> Any:
        """Return the frames arranged as (T, Z, A, P, Y, X) (lazy when the frames are)."""
        if not isinstance(self.frames, np.ndarray):
            from .lazy import arrange_lazy

            return arrange_lazy(self.frames, self.layout)
        return arrange_frames(np.asarray(self.frames), self.layout)


# ---------------------------------------------------------------- shape check, estimation
def check_params_shape(params: PatternParameters | tuple[PatternParameters, ...] | list[PatternParameters],
                       n_angles: int, n_phases: int) -> None:
    """Parameters must describe the stack's angles × phases (the one copy of this check)."""
    for p in [params] if isinstance(params, PatternParameters) else params:
        if (p.n_angles, p.n_phases) != (n_angles, n_phases):
            raise SimInputError(f"the parameters describe {p.n_angles} angles × {p.n_phases} phases "
                                f"but the stack has {n_angles} × {n_phases}")


@dataclass
class Estimate:
    """Parameters for every plane (one, or one per time point).

    With the estimation results (``EstimationResult``, empty when the parameters were given)
    and where they came from.
    """

    params: PatternParameters | tuple[PatternParameters, ...]
    results: list[Any]
    estimated_on: str


def estimate_plane(plane: np.ndarray, optics: Optics, otf: RadialOTF, background: float,
                   settings: EstimationSettings) -> Any:
    """Estimate the pattern of one plane (A, P, Y, X); return the ``EstimationResult``.

    With ``settings.keep_k``: refit phases and modulation at the known k.
    """
    from .refit import estimate_or_refit

    return estimate_or_refit(np.asarray(plane), optics, settings.keep_k, otf=otf, n_orders=settings.n_orders,
                             background=background, consistency_prior=settings.consistency_prior)


def estimate(request: ReconstructionRequest, otf: RadialOTF | None = None,
             compute: Callable[[Callable[..., Any], list[tuple[Any, ...]]], list[Any]] | None = None,
             progress: Callable[[int, int], None] | None = None, chunk: int = 4,
             name_errors: bool = False) -> Estimate:
    """Return the parameters of ``request``: as given, else estimated as ``estimation`` says.

    ``compute(fn, [args, ...])`` returns ``[fn(*args), ...]`` with lazy arguments evaluated (a
    batch runs it in its dask executor; default: in this thread); ``chunk`` time points go to it
    at a time when every time point is estimated, and ``progress(done, total)`` is called after
    each chunk. Errors name the time point when every one is estimated, or with ``name_errors``.
    """
    planes = request.planes()
    n_t = planes.shape[0]
    if request.params is not None:
        check_params_shape(request.params, *planes.shape[2:4])
        return Estimate(request.params, [], "parameters file")
    otf = otf or request.otf.make(request.optics)
    s = request.estimation
    compute = compute or (lambda fn, calls: [fn(*args) for args in calls])
    from .lazy import estimation_plane

    if s.per_time_point:
        results: list[Any] = []
        for t0 in range(0, n_t, max(1, chunk)):
            calls = [(f"time point {t}", estimate_plane, estimation_plane(planes, t, s.z), request.optics, otf,
                      request.background, s) for t in range(t0, min(n_t, t0 + max(1, chunk)))]
            results += compute(_named, calls)
            if progress:
                progress(len(results), n_t)
        return Estimate(tuple(r.params for r in results), results, "every time point")
    plane = np.asarray(compute(np.asarray, [(estimation_plane(planes, s.time, s.z),)])[0])
    where = "mean of the time points" if s.time == "mean" else f"time point {s.time}"
    if name_errors:
        result = _named(where, estimate_plane, plane, request.optics, otf, request.background, s)
    else:
        result = estimate_plane(plane, request.optics, otf, request.background, s)
    on = "mean of all time points" if s.time == "mean" else f"time point {int(s.time)}"
    return Estimate(result.params, [result], on)


def _named(where: str, fn: Callable[..., Any], *args: Any) -> Any:
    try:
        return fn(*args)
    except SimInputError as exc:
        raise SimInputError(f"{where}: {exc}") from None


def validate_planes(flat: np.ndarray, n_z: int) -> None:
    """Check every plane (N, A, P, Y, X) of a multi-plane stack first; a bad one is named."""
    if len(flat) < 2:
        return
    for n, plane in enumerate(flat):
        try:
            validate_plane(plane)
        except SimInputError as exc:
            t, z = divmod(n, n_z)
            raise SimInputError(f"time point {t}, z plane {z}: {exc}") from None


def iter_planes(request: ReconstructionRequest, params: PatternParameters | tuple[PatternParameters, ...],
                otf: RadialOTF | None = None, planes: np.ndarray | None = None,
                validate: bool = True, noise_planes: np.ndarray | None = None) -> Iterator[PlaneResult]:
    """Reconstruct every plane of ``request`` in (t, z) order, one :class:`PlaneResult` at a time.

    ``params``: one set, or one per time point; ``planes``: (T·Z, A, P, Y, X) to use instead of
    the request's frames (e.g. denoised). All planes are checked before the first is computed
    (``validate``: a caller that checked them with :func:`validate_planes` passes False);
    ``noise_planes``: the measured planes, same shape, when ``planes`` are denoised (the automatic w
    is chosen from their noise).
    """
    arranged = request.planes()
    n_z = arranged.shape[1]
    flat = np.asarray(planes if planes is not None else arranged.reshape(-1, *arranged.shape[2:]))
    check_params_shape(params, *flat.shape[1:3])
    if noise_planes is not None and np.shape(noise_planes) != flat.shape:
        raise SimInputError(f"the measured planes {np.shape(noise_planes)} do not match the planes {flat.shape}")
    if validate:
        validate_planes(flat, n_z)
    otf = otf or request.otf.make(request.optics)
    for n, plane in enumerate(flat):
        t, z = divmod(n, n_z)
        p = params[t] if isinstance(params, tuple) else params
        yield reconstruct_plane(plane, request.optics, p, otf, request.background, request.method,
                                request.outputs, n, t, z,
                                None if noise_planes is None else np.asarray(noise_planes[n]))


# ---------------------------------------------------------------- metadata, batch job
def reconstruction_metadata(request: ReconstructionRequest, params: Any, settings: FilterSettings | None = None,
                            pinn_run: dict[str, Any] | None = None, /, **extra: Any) -> SimMetadata:
    """Build the metadata of a reconstruction of ``request`` (the one place it is built).

    ``settings``: the filter settings used (default the request's); ``pinn_run``: the PINN's
    run facts; ``extra``: further schema fields (name, estimated_on, channel, denoiser, ...).
    """
    optics, method = request.optics, request.method
    plist = params if isinstance(params, PatternParameters) else list(params)
    filt = {**vars(settings or method.filter), "form": method.form, "auto": method.auto_wiener}
    pinn = {**(method.pinn or {}), **(pinn_run or {})} if method.name == "pinn" else None
    z_step = request.z_step_um if request.z_step_um and request.layout.n_z > 1 else None
    return SimMetadata(kind="reconstruction", method=method.name, source=request.source,
                       optics=ImageOptics.from_optics(optics, optics.pixel_size_um / 2),
                       raw_pixel_size_um=optics.pixel_size_um,
                       params=plist.to_dict(optics) if isinstance(plist, PatternParameters)
                       else [p.to_dict(optics) for p in plist],
                       filter=filt, layout=vars(request.layout).copy(), background=request.background,
                       pinn=pinn, z_step_um=z_step, **extra)


def plane_job(request: ReconstructionRequest, params: PatternParameters | tuple[PatternParameters, ...],
              otf: RadialOTF | None = None) -> Any:
    """Build the picklable per-plane job (``lazy.PlaneJob``) that a batch runs in dask tasks."""
    from .lazy import make_job

    m = request.method
    pinn = None if m.name != "pinn" else {**(m.pinn or {}), "uncertainty_samples": 0}
    return make_job(request.optics, params, otf or request.otf.make(request.optics), m.filter, request.background,
                    m.name, pinn, auto_wiener=m.auto_wiener)


# ---------------------------------------------------------------- all of it
@dataclass
class RunResult:
    """Every plane's outputs stacked (N, ...) in (t, z) order, the parameters and the metadata."""

    images: np.ndarray
    params: PatternParameters | tuple[PatternParameters, ...]
    metadata: SimMetadata
    planes: list[PlaneResult]
    estimate: Estimate

    def stacked(self, name: str) -> np.ndarray | None:
        """One output ('widefield', 'sigma', 'residual', 'spectrum') stacked, None when not made."""
        values = [getattr(p, name) for p in self.planes]
        return None if any(v is None for v in values) else np.stack(values)


def run(request: ReconstructionRequest, progress: Callable[[PlaneResult], None] | None = None) -> RunResult:
    """Estimate (when needed), reconstruct every plane and build the metadata.

    ``progress`` is called with each plane's result as it is made.
    """
    otf = request.otf.make(request.optics)
    est = estimate(request, otf)
    results = []
    for res in iter_planes(request, est.params, otf):
        results.append(res)
        if progress:
            progress(res)
    meta = reconstruction_metadata(request, est.params, results[-1].settings, results[-1].pinn,
                                   estimated_on=est.estimated_on)
    return RunResult(np.stack([r.image for r in results]), est.params, meta, results, est)


__all__ = ["ReconstructionRequest", "OtfSpec", "EstimationSettings", "MethodSettings", "Outputs", "PlaneResult",
           "Estimate", "RunResult", "pinn_settings", "check_params_shape", "estimate", "estimate_plane",
           "reconstruct_plane", "fit_pinn_plane", "iter_planes", "validate_planes", "reconstruction_metadata",
           "plane_job", "run", "OTF_CHOICES"]
