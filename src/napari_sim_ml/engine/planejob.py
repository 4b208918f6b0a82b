"""Lazy reconstruction with dask: the picklable per-plane job and the task graph.

:class:`PlaneJob` holds everything one acquisition's planes need (optics, parameters, OTF,
filter, background, method); :func:`reconstruct_lazy` maps it over a lazy (T, Z, A, P, Y, X)
stack, one plane per dask task, with the engine's own per-plane functions (so a lazy result
equals the plane-by-plane result exactly). Re-exported by :mod:`.lazy`.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import SimInputError
from .otf import RadialOTF
from .parameters import FilterSettings, Optics, PatternParameters

_APO_CACHE: dict[tuple, np.ndarray] = {}
_APO_LOCK = threading.Lock()


@dataclass(frozen=True)
class PlaneJob:
    """Everything needed to reconstruct any plane of one acquisition (picklable).

    params: one PatternParameters for every plane, or a tuple with one per time
    point (indexed by the plane's time point ``t``).
    """

    optics: Optics
    params: PatternParameters | tuple[PatternParameters, ...]
    otf: RadialOTF
    settings: FilterSettings = field(default_factory=FilterSettings)
    background: float = 0.0
    method: str = "wiener"
    pinn: dict[str, Any] | None = None
    key: str = ""
    auto_wiener: bool = False  # w chosen from each plane's noise (filters.auto_wiener) instead of settings.wiener

    def params_at(self, t: int) -> PatternParameters:
        """Return the pattern parameters of time point ``t`` (the same for all when fixed)."""
        return self.params[t] if isinstance(self.params, tuple) else self.params

    def reconstruct(self, plane: np.ndarray, t: int = 0, noise_plane: np.ndarray | None = None) -> np.ndarray:
        """One plane (A, P, Y, X) → (2Y, 2X) float32, exactly as the engine does it.

        ``noise_plane``: the measured frames when ``plane`` is denoised (the automatic w is chosen
        from their noise, as ``methods.reconstruct_plane`` does).
        """
        from .wiener import prepare_reconstruction, wiener_filter

        params = self.params_at(t)
        if self.method == "pinn":
            from .methods import fit_pinn_plane

            image = fit_pinn_plane(plane, self.optics, params, self.otf, self.background, self.pinn)[0]
            return np.asarray(image, dtype=np.float32)
        prepared = prepare_reconstruction(plane, self.optics, params, self.otf, self.background)
        # the apodization depends only on the geometry (parameters, shape, OTF, settings):
        # computed for the first plane, reused for all others in this process
        cache_key = (self.key, t if isinstance(self.params, tuple) else 0, plane.shape)
        apo = _APO_CACHE.get(cache_key) if self.key else None
        if apo is not None:
            prepared._cache["apo"] = apo
            prepared._cache["apo_key"] = ("apo", self.settings.apo_cutoff, self.settings.apo_bend)
        settings = self.settings
        if self.auto_wiener:
            from dataclasses import replace

            from .filters import auto_wiener

            noisy = prepared if noise_plane is None else \
                prepare_reconstruction(noise_plane, self.optics, params, self.otf, self.background)
            settings = replace(settings, wiener=auto_wiener(noisy, settings))
        image = wiener_filter(prepared, settings)
        if apo is None and self.key:
            with _APO_LOCK:
                if len(_APO_CACHE) > 64:
                    _APO_CACHE.clear()
                _APO_CACHE[cache_key] = prepared._cache["apo"]
        return image


def make_job(optics: Optics, params: PatternParameters | Sequence[PatternParameters], otf: RadialOTF,
             settings: FilterSettings | None = None, background: float = 0.0, method: str = "wiener",
             pinn: dict[str, Any] | None = None, auto_wiener: bool = False) -> PlaneJob:
    """Build a :class:`PlaneJob` with a content key (so that caches are shared across tasks)."""
    from dask.base import tokenize

    params = params if isinstance(params, PatternParameters) else tuple(params)
    settings = settings or FilterSettings()
    key = tokenize(optics, params, otf.freqs, otf.values, settings, background, method, pinn, auto_wiener)
    return PlaneJob(optics, params, otf, settings, float(background), method, pinn, key, auto_wiener)


def _reconstruct_block(block: np.ndarray, job: PlaneJob, t0: int, block_info: dict | None = None,
                       noisy: np.ndarray | None = None) -> np.ndarray:
    t = t0 + (block_info[0]["chunk-location"][0] if block_info else 0)
    out = np.empty((*block.shape[:2], 2 * block.shape[-2], 2 * block.shape[-1]), dtype=np.float32)
    z0 = block_info[0]["chunk-location"][1] if block_info else 0
    for i in range(block.shape[0]):
        for j in range(block.shape[1]):
            try:
                out[i, j] = job.reconstruct(np.asarray(block[i, j]), t + i,
                                            None if noisy is None else np.asarray(noisy[i, j]))
            except SimInputError as exc:  # name the plane of a time-lapse / z-stack that is bad
                raise SimInputError(f"time point {t + i}, z plane {z0 + j}: {exc}") from None
    return out


def _reconstruct_pair(block: np.ndarray, noisy: np.ndarray, job: PlaneJob, t0: int,
                      block_info: dict | None = None) -> np.ndarray:
    return _reconstruct_block(block, job, t0, block_info, noisy)


def reconstruct_lazy(stack: Any, job: PlaneJob, t0: int = 0, measured: Any = None) -> Any:
    """(T, Z, A, P, Y, X) dask stack → (T, Z, 2Y, 2X) float32 dask array, one plane per task.

    ``t0`` is the time index of the stack's first time point (for per-time-point
    parameters when ``stack`` is a slice of a longer series); ``measured``: the raw stack, same
    shape, when ``stack`` is denoised (the automatic w is chosen from its noise).
    """
    import dask.array as da
    from dask.base import tokenize

    stack = stack.rechunk((1, 1, *stack.shape[2:]))
    ny, nx = stack.shape[-2:]
    arrays = (stack,) if measured is None else (stack, measured.rechunk(stack.chunks))
    func = _reconstruct_block if measured is None else _reconstruct_pair
    return da.map_blocks(
        func, *arrays, job, t0, dtype=np.float32, drop_axis=(2, 3),
        chunks=(stack.chunks[0], stack.chunks[1], (2 * ny,), (2 * nx,)),
        name=f"reconstruct-{tokenize(job.key, *(a.name for a in arrays), t0)}",  # unique per input, job and slice
    )
