"""The reconstruction methods, plane by plane: where a new method plugs in.

:class:`MethodSettings` names a method and its settings, :class:`Outputs` the maps wanted,
and :func:`reconstruct_plane` runs one plane (A, P, Y, X) → :class:`PlaneResult`. The
classical filters (generalised Wiener, the two-step 'hifi' filter) and the PINN are called
here only (:func:`fit_pinn_plane` is the one PINN call). A new method adds its name to
:data:`METHODS`, its settings to :class:`MethodSettings` and a branch to
:func:`reconstruct_plane`; the command line, batch and the dock then reach it through
:mod:`.pipeline`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from .errors import SimInputError
from .otf import RadialOTF
from .parameters import FilterSettings, Optics, PatternParameters

METHODS = ("wiener", "pinn")
FILTER_FORMS = ("wiener", "hifi")


def pinn_settings(mode: str | None = None, seed: int | None = None, iterations: int | None = None,
                  uncertainty_samples: int = 0) -> dict[str, Any]:
    """Return a front end's PINN settings as ``PinnSettings`` keyword arguments.

    The one place they are built; None: the PINN's default.
    """
    return {"mode": mode or "noise-aware", "seed": 0 if seed is None else seed, "iterations": iterations,
            "uncertainty_samples": uncertainty_samples}


@dataclass(frozen=True)
class MethodSettings:
    """The reconstruction method and its settings.

    name: 'wiener' or 'pinn'. form: the classical filter, 'wiener' (generalised Wiener) or
    'hifi' (the spectrum-optimised two-step filter). filter: its settings. auto_wiener: w not
    given: chosen from each plane's noise (Wiener), HIFI_W2 (hifi). pinn: PINN settings as
    :func:`pinn_settings` gives them.
    """

    name: str = "wiener"
    form: str = "wiener"
    filter: FilterSettings = field(default_factory=FilterSettings)
    auto_wiener: bool = False
    pinn: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.name not in METHODS:
            raise SimInputError(f"unknown method '{self.name}'; choose one of {', '.join(METHODS)}")
        if self.form not in FILTER_FORMS:
            raise SimInputError(f"unknown filter '{self.form}'; choose one of {', '.join(FILTER_FORMS)}")
        if self.name == "pinn" and self.pinn is None:
            object.__setattr__(self, "pinn", pinn_settings())

    @classmethod
    def from_flags(cls, method: str = "wiener", form: str = "wiener", wiener: float | None = None,
                   apo_cutoff: float | None = None, apo_bend: float | None = None,
                   attenuation: float | None = None, attenuation_fwhm: float | None = None,
                   pinn: dict[str, Any] | None = None) -> MethodSettings:
        """From flag values (None: the default); ``wiener`` None means chosen automatically."""
        base = FilterSettings()
        given = {"wiener": wiener, "apo_cutoff": apo_cutoff, "apo_bend": apo_bend, "attenuation": attenuation,
                 "attenuation_fwhm": attenuation_fwhm}
        settings = replace(base, **{k: v for k, v in given.items() if v is not None})
        return cls(method, form, settings, auto_wiener=wiener is None, pinn=pinn)


@dataclass(frozen=True)
class Outputs:
    """The outputs wanted.

    Besides the image: widefield (2× grid), σ (PINN), data residual (PINN, camera grid), log
    spectrum of the image.
    """

    image: bool = True
    widefield: bool = False
    sigma: bool = False
    residual: bool = False
    spectra: bool = False


@dataclass
class PlaneResult:
    """One reconstructed plane.

    index (flat t·Z + z), t, z; image (2Y, 2X); widefield (2Y, 2X), sigma (2Y, 2X, PINN),
    residual (Y, X, PINN) and spectrum (2Y, 2X, log |FFT| of the image) when wanted; the filter
    settings used (w as chosen); the frame noise variance (Wiener, counts²); pinn: the PINN's
    run facts (iterations_run, device, seconds); prepared: the Wiener's
    ``PreparedReconstruction`` (for live filter changes).
    """

    index: int
    t: int
    z: int
    image: np.ndarray
    settings: FilterSettings
    widefield: np.ndarray | None = None
    sigma: np.ndarray | None = None
    residual: np.ndarray | None = None
    spectrum: np.ndarray | None = None
    noise_variance: float | None = None
    pinn: dict[str, Any] | None = None
    prepared: Any = None


def fit_pinn_plane(plane: np.ndarray, optics: Optics, params: PatternParameters, otf: RadialOTF,
                   background: float, settings: dict[str, Any] | None) -> tuple[np.ndarray, Any, Any, dict[str, Any]]:
    """Fit the PINN to one plane: image, σ, residual and run facts (the one place it is called)."""
    from .pinn import PinnSettings, fit_pinn

    res = fit_pinn(plane, optics, params, PinnSettings(**(settings or {})), otf=otf, background=background)
    return res.image, res.sigma, res.residual, {"iterations_run": res.iterations, "device": res.device,
                                                "seconds": res.seconds}


def reconstruct_plane(plane: np.ndarray, optics: Optics, params: PatternParameters, otf: RadialOTF,
                      background: float, method: MethodSettings, outputs: Outputs = Outputs(),
                      index: int = 0, t: int = 0, z: int = 0, noise_plane: np.ndarray | None = None) -> PlaneResult:
    """Reconstruct one plane (A, P, Y, X) as ``method`` says; the outputs as ``outputs`` asks.

    ``noise_plane``: the measured frames (A, P, Y, X) whose noise sets the automatic w when
    ``plane`` is not what was measured (denoised frames: their noise is gone from where
    ``filters.auto_wiener`` measures it, which chose w ≈ 0.003 there and lost 0.4 dB).
    """
    from .wiener import log_spectrum, prepare_reconstruction, wiener_filter

    settings, prepared, noise, pinn_info = method.filter, None, None, None
    sigma = residual = None
    if method.name == "wiener":
        prepared = prepare_reconstruction(plane, optics, params, otf, background)
        if method.form == "hifi":
            from .filters import HIFI_W2, hifi_filter

            settings = replace(settings, wiener=HIFI_W2) if method.auto_wiener else settings
            image = hifi_filter(prepared, settings)
        else:
            if method.auto_wiener:
                from .filters import auto_wiener

                noisy = prepared if noise_plane is None else \
                    prepare_reconstruction(noise_plane, optics, params, otf, background)
                settings = replace(settings, wiener=auto_wiener(noisy, settings))
            image = wiener_filter(prepared, settings)
        noise = prepared.frame_noise_variance
    else:
        image, sigma, residual, pinn_info = fit_pinn_plane(plane, optics, params, otf, background, method.pinn)
        if outputs.widefield:
            prepared = prepare_reconstruction(plane, optics, params, otf, background)
    return PlaneResult(index, t, z, image, settings,
                       widefield=prepared.widefield if outputs.widefield and prepared is not None else None,
                       sigma=sigma if outputs.sigma else None, residual=residual if outputs.residual else None,
                       spectrum=log_spectrum(image) if outputs.spectra else None, noise_variance=noise,
                       pinn=pinn_info, prepared=prepared)
