"""Options shared by the command-line front ends (``cli``, ``batch``, ``denoise_cli``).

The argument groups (optics, frame layout, estimation, method) and what they resolve to:
the optics, the layout, the background, and the pipeline's
:class:`~napari_sim_ml.engine.pipeline.ReconstructionRequest` parts. A front end imports
these public names; none imports another front end's.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict
from typing import Any

import numpy as np

from .engine.errors import SimInputError
from .engine.io import ANGLE_RANGE, IMMERSION_INDEX, FrameLayout, RawFile, arrange_frames, guess_layout, read_raw
from .engine.otf import RadialOTF
from .engine.parameters import FilterSettings, Optics, PatternParameters, load_parameters_json
from .engine.pinn.types import MODES, PinnSettings
from .engine.pipeline import (
    Estimate,
    EstimationSettings,
    MethodSettings,
    OtfSpec,
    Outputs,
    ReconstructionRequest,
    estimate,
    estimate_plane,
    pinn_settings,
)

UNCERTAINTY_SAMPLES = 8  # PINN bootstrap samples for --uncertainty when --uncertainty-samples is not given
OIL_INDEX = IMMERSION_INDEX["oil"]  # the highest immersion index in common use, assumed when nothing states the medium


# ---------------------------------------------------------------- argument groups
def add_optics(p: argparse.ArgumentParser) -> None:
    """Add the optics flags (they override the file's metadata)."""
    g = p.add_argument_group("optics (override the file's metadata)")
    g.add_argument("--na", type=float, help="detection numerical aperture")
    g.add_argument("--wavelength-nm", type=float, help="emission wavelength, nm")
    g.add_argument("--pixel-size-um", type=float, help="raw camera pixel size in the sample, µm")
    g.add_argument("--immersion-index", type=float,
                   help=f"refractive index of the immersion medium (default: the file's, else oil {OIL_INDEX})")


def add_layout(p: argparse.ArgumentParser) -> None:
    """Add the frame layout, background and OTF flags."""
    g = p.add_argument_group("frame layout (guessed from the frame count when omitted)")
    g.add_argument("--angles", type=int, help=f"number of pattern angles ({ANGLE_RANGE[0]}-{ANGLE_RANGE[1]})")
    g.add_argument("--phases", type=int, help="phases per angle (3 for 2-beam, 5 for 3-beam)")
    g.add_argument("--z", type=int, dest="n_z", help="number of z planes")
    g.add_argument("--order", help="frame order, fastest first: PAZ (angle-major, default), APZ "
                                   "(phase-major), PZA (OMX), ZAP (Elyra)")
    g.add_argument("--orders", type=int, choices=(1, 2), help="harmonic orders: 1 (2-beam) or 2 (3-beam)")
    g.add_argument("--frames", help="use only these frames (0-based, inclusive ranges: 0-14 or 0-4,10-14), "
                                    "e.g. to leave out an average frame saved after the raw ones")
    g.add_argument("--mosaic", help="split every image into a rows x columns mosaic of frames, rows = angles, "
                                    "columns = phases (Nikon N-SIM: 3x3, or 3x5 for 3-D SIM)")
    g.add_argument("--background", type=float, help="camera offset to subtract (counts); "
                                                    "default: the file's metadata, else 0")
    g.add_argument("--otf", help="measured OTF (radial MRC) or PSF image (TIFF/MRC)")
    g.add_argument("--otf-attenuation", type=float,
                   help="use fairSIM's attenuated ideal OTF ideal(ρ)·a^ρ with this a (0-1]")


def add_estimation(p: argparse.ArgumentParser) -> None:
    """Add the estimation flags."""
    p.add_argument("--relax-consistency", action="store_true",
                   help="judge each angle's peak alone, without preferring equal |k| and angles 180°/n apart "
                        "(inconsistent angles are still reported and graded at most 'low')")
    p.add_argument("--k-from", metavar="PARAMS.json",
                   help="keep k (and the angles) of this parameters JSON, e.g. estimated on a bright acquisition "
                        "or a bead slide, and refit only the phases and modulation on these frames")


def add_method_flags(p: argparse.ArgumentParser) -> None:
    """Wiener filter settings and PINN options (shared by reconstruct and batch)."""
    defaults = FilterSettings()
    p.add_argument("--wiener", type=float, default=None,
                   help="Wiener parameter w (default: chosen from the data's noise)")
    p.add_argument("--apo-cutoff", type=float, default=defaults.apo_cutoff,
                   help="apodization cutoff, in units of the SIM support boundary")
    p.add_argument("--apo-bend", type=float, default=defaults.apo_bend)
    p.add_argument("--attenuation", type=float, default=defaults.attenuation,
                   help="band-centre attenuation strength 0-1")
    p.add_argument("--attenuation-fwhm", type=float, default=defaults.attenuation_fwhm,
                   help="band-centre attenuation FWHM, cycles/µm")
    p.add_argument("--mode", choices=MODES, help=f"PINN mode (default {PinnSettings().mode})")
    p.add_argument("--iterations", type=int, help="PINN iterations (maximum)")
    p.add_argument("--seed", type=int, help=f"PINN seed (default {PinnSettings().seed})")
    add_apply_flags(p)


def add_apply_flags(p: argparse.ArgumentParser) -> None:
    """Add ``--denoiser`` and ``--step2`` for reconstruct and batch."""
    p.add_argument("--denoiser", metavar="MODEL.pt", help="denoise the raw frames with this trained model first")
    p.add_argument("--denoiser-device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--step2", metavar="M2.pt", help="then denoise the reconstruction with this step-2 model "
                                                     "(it can distort true structures)")


# ---------------------------------------------------------------- resolution
def first_given(*values: Any) -> Any:
    """Return the first value that is not None (0 is a value: it is checked, never replaced)."""
    return next((v for v in values if v is not None), None)


def resolve_optics(raw: RawFile, args: argparse.Namespace, base: dict[str, Any] | None = None) -> Optics:
    """Return the optics: flags, else the parameters JSON, else the file's metadata."""
    base = base or {}
    values: dict[str, Any] = {}
    for key, flag in (("na", "--na"), ("wavelength_nm", "--wavelength-nm"), ("pixel_size_um", "--pixel-size-um")):
        value = first_given(getattr(args, key, None), base.get(key), getattr(raw, key))
        if value is None:
            raise SimInputError(f"{raw.path.name} does not state the {key.replace('_', ' ')}; give {flag}")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
            raise SimInputError(f"the {key.replace('_', ' ')} must be a number, not {value!r}")
        values[key] = float(value)
    immersion = first_given(getattr(args, "immersion_index", None), base.get("immersion_index"),
                             getattr(raw, "immersion_index", None))
    if immersion is None and values["na"] > OIL_INDEX:
        raise SimInputError(f"numerical aperture {values['na']} is above the refractive index of oil "
                            f"({OIL_INDEX}); give --immersion-index for a higher-index immersion medium")
    return Optics(**values, immersion_index=None if immersion is None else float(immersion))


def check_flag_values(args: argparse.Namespace) -> None:
    """Check the values given as flags at once (before any file is read), each on its own."""
    for key in ("na", "wavelength_nm", "pixel_size_um"):
        value = getattr(args, key, None)
        if value is not None:
            Optics(**{key: value})  # raises the range error
    if getattr(args, "immersion_index", None) is not None and not 1.0 <= args.immersion_index <= 2.0:
        raise SimInputError(f"immersion refractive index {args.immersion_index} is outside 1.0-2.0")
    if getattr(args, "background", None) is not None and not np.isfinite(args.background):
        raise SimInputError(f"--background must be a finite number, not {args.background}")
    if getattr(args, "wiener", None) is not None:
        FilterSettings(wiener=args.wiener, apo_cutoff=args.apo_cutoff, apo_bend=args.apo_bend,
                       attenuation=args.attenuation, attenuation_fwhm=args.attenuation_fwhm)


def check_method_flags(args: argparse.Namespace) -> None:
    """Refuse PINN-only flags with the Wiener method; then fill in the PINN defaults."""
    if getattr(args, "method", "wiener") == "wiener":
        given = [flag for flag, dest in (("--mode", "mode"), ("--iterations", "iterations"), ("--seed", "seed"),
                                         ("--uncertainty", "uncertainty"), ("--residual", "residual"),
                                         ("--uncertainty-samples", "uncertainty_samples"))
                 if getattr(args, dest, None) is not None]
        if given:
            verb = "applies" if len(given) == 1 else "apply"
            raise SimInputError(f"{', '.join(given)} only {verb} to --method pinn, not to the Wiener method")
    if args.iterations is not None and args.iterations < 1:
        raise SimInputError(f"--iterations must be at least 1, not {args.iterations}")
    if getattr(args, "uncertainty_samples", None) is not None and args.uncertainty_samples < 2:
        raise SimInputError(f"--uncertainty-samples must be at least 2, not {args.uncertainty_samples}")
    if args.mode is None:
        args.mode = PinnSettings().mode
    if args.seed is None:
        args.seed = PinnSettings().seed


def resolve_layout(raw: RawFile, args: argparse.Namespace) -> FrameLayout:
    """Return the layout: flags override the file's stored layout; the rest is guessed from the frame count."""
    given = {k: v for k, v in (("n_angles", args.angles), ("n_phases", args.phases),
                               ("n_z", args.n_z), ("order", args.order)) if v is not None}
    if getattr(args, "mosaic", None):
        from .engine.mosaic import mosaic_layout

        given = {**mosaic_layout(args.mosaic), **given}
    merged = {**raw.extra.get("layout", {}), **given}
    try:
        if "n_angles" in merged and "n_phases" in merged:
            layout = FrameLayout(**merged)
        else:
            layout = FrameLayout(**{**asdict(guess_layout(raw.frames.shape[0], merged.get("n_z"))), **merged})
        if raw.frames.shape[0] % layout.frames_per_set:
            arrange_frames(np.empty((raw.frames.shape[0], 1, 1)), layout)  # the usual sentence
    except SimInputError as exc:
        from .engine.sequence import average_frame_hint

        raise SimInputError(f"{exc}{average_frame_hint(raw)}") from None
    return layout


def params_layout(args: argparse.Namespace) -> dict[str, int]:
    """Return the angles and phases of a given parameters JSON (``--params``, ``--k-from``): they state the layout."""
    path = getattr(args, "params", None) or getattr(args, "k_from", None)
    if not path:
        return {}
    try:
        params, _ = load_parameters_json(path)
    except (SimInputError, OSError, ValueError):
        return {}  # the command reports the bad file itself
    return {"n_angles": params.n_angles, "n_phases": params.n_phases}


def layout_from_frames(raw: RawFile, args: argparse.Namespace) -> FrameLayout:
    """Return the layout as :func:`resolve_layout`, or found from the frames.

    When neither flags nor metadata give angles and phases the layout is found from the
    frames (engine/layout.py, reported on stderr), and a given layout that another fits
    clearly better draws a one-line warning naming that layout.
    """
    from .engine.layout import check_layout, detect_layout

    stated = {**raw.extra.get("layout", {}), **params_layout(args),
              **{k: v for k, v in (("n_angles", args.angles), ("n_phases", args.phases)) if v}}
    frames = raw.frames
    try:
        optics = resolve_optics(raw, args)
    except SimInputError:  # no optics: the count-based guess (the command then asks for them)
        return resolve_layout(raw, args)
    if frames.ndim != 3 or min(frames.shape[-2:]) < 32 or not np.isfinite(frames[: min(len(frames), 64)]).all():
        return resolve_layout(raw, args)  # the command reports what is wrong with the frames
    background = background_of(args, raw)
    if "n_angles" in stated and "n_phases" in stated:
        layout = resolve_layout(raw, args)
        if len(frames) % layout.frames_per_set == 0 and np.ptp(frames[: layout.frames_per_set]) > 0:
            warning = check_layout(frames, optics, layout, background)
            if warning:  # printed on success (an error says what is wrong in one line)
                args.notes = [*getattr(args, "notes", []), f"napari-sim-ml: warning: {warning}"]
        return layout
    given = {k: v for k, v in (("n_angles", stated.get("n_angles")), ("n_phases", stated.get("n_phases")),
                               ("n_z", args.n_z), ("order", args.order)) if v}
    if np.ptp(frames[: min(len(frames), 64)]) == 0:
        return resolve_layout(raw, args)  # constant frames: nothing to judge; the command says so
    try:
        choice = detect_layout(frames, optics, background, **given)
    except SimInputError as exc:
        from .engine.sequence import average_frame_hint

        raise SimInputError(f"{exc}{average_frame_hint(raw)}") from None
    args.notes = [*getattr(args, "notes", []), f"napari-sim-ml: {choice.describe()}"]  # printed on success
    return choice.layout


def load_planes(args: argparse.Namespace) -> tuple[RawFile, np.ndarray, FrameLayout]:
    """Read ``args.raw`` (``--frames``, ``--mosaic`` applied) and arrange it as (T, Z, A, P, Y, X)."""
    from .engine.mosaic import apply_mosaic
    from .engine.sequence import select_frames

    mosaic = getattr(args, "mosaic", None)  # a mosaic file may hold one 2-D image: one plane's frames
    raw = apply_mosaic(select_frames(read_raw(args.raw, require_frames=not mosaic), getattr(args, "frames", None)),
                       mosaic)
    layout = resolve_layout(raw, args) if mosaic else layout_from_frames(raw, args)  # a mosaic fixes the order
    planes = arrange_frames(raw.frames, layout)
    return raw, planes, layout


def estimate_with_warnings(plane: np.ndarray, optics: Optics, otf: RadialOTF, args: argparse.Namespace,
                           background: float, keep_k: PatternParameters | None = None) -> Any:
    """Estimate one plane (A, P, Y, X) as the flags say; the warnings go to stderr."""
    result = estimate_plane(plane, optics, otf, background, estimation_settings(args, keep_k))
    for warning in result.warnings:
        print(f"napari-sim-ml: warning: {warning}", file=sys.stderr)
    return result


def background_of(args: argparse.Namespace, raw: RawFile) -> float:
    """Return the camera offset (counts): ``--background``, else the file's metadata, else 0."""
    if args.background is not None:
        return float(args.background)
    stated = raw.metadata.background
    return 0.0 if stated is None else float(stated)


def otf_spec(args: argparse.Namespace) -> OtfSpec:
    """Return the OTF asked for: ``--otf FILE``, else the ideal one (``--otf-attenuation``)."""
    return OtfSpec(path=args.otf or None, attenuation=getattr(args, "otf_attenuation", None))


def resolve_otf(args: argparse.Namespace, optics: Optics) -> RadialOTF:
    """Return the OTF of :func:`otf_spec` for ``optics``."""
    return otf_spec(args).make(optics)


def estimation_settings(args: argparse.Namespace, keep_k: PatternParameters | None = None) -> EstimationSettings:
    """Return the estimation flags as the pipeline's settings.

    ``--orders``, ``--relax-consistency``, and batch's ``--estimate-on`` and
    ``--per-time-point``; ``keep_k``: parameters whose k is kept (``--k-from``).
    """
    when = getattr(args, "estimate_on", "0")
    return EstimationSettings(time="mean" if when == "mean" else int(when), n_orders=getattr(args, "orders", None),
                              consistency_prior=not getattr(args, "relax_consistency", False),
                              per_time_point=getattr(args, "per_time_point", False), keep_k=keep_k)


def method_settings(args: argparse.Namespace, uncertainty: bool = False) -> MethodSettings:
    """Return the method flags as the pipeline's settings (after :func:`check_method_flags`).

    ``uncertainty``: the PINN also makes its σ map (``--uncertainty-samples``, default
    UNCERTAINTY_SAMPLES).
    """
    pinn = None
    if args.method == "pinn":
        n_unc = first_given(getattr(args, "uncertainty_samples", None), UNCERTAINTY_SAMPLES) if uncertainty else 0
        pinn = pinn_settings(args.mode, args.seed, args.iterations, n_unc)
    return MethodSettings.from_flags(args.method, getattr(args, "filter", "wiener"), args.wiener, args.apo_cutoff,
                                     args.apo_bend, args.attenuation, args.attenuation_fwhm, pinn)


def request_from_args(args: argparse.Namespace, raw: RawFile, layout: FrameLayout, optics: Optics,
                      params: PatternParameters | None = None, method: MethodSettings | None = None,
                      outputs: Outputs | None = None, keep_k: PatternParameters | None = None,
                      frames: Any = None) -> ReconstructionRequest:
    """Build the pipeline request of a command: the file's frames (or ``frames``) and the flags."""
    return ReconstructionRequest(raw.frames if frames is None else frames, layout, optics, background_of(args, raw),
                                 otf_spec(args), params, estimation_settings(args, keep_k), method or MethodSettings(),
                                 outputs or Outputs(), source=str(raw.path), z_step_um=raw.z_step_um)


def k_from(args: argparse.Namespace) -> tuple[PatternParameters | None, dict[str, Any]]:
    """Return the parameters of ``--k-from`` (their k is kept) and the JSON's optics, or (None, {})."""
    if getattr(args, "k_from", None) and getattr(args, "params", None):
        raise SimInputError("--k-from and --params exclude each other: --params uses a JSON exactly, "
                            "--k-from keeps only its k and refits the phases")
    return load_parameters_json(args.k_from) if getattr(args, "k_from", None) else (None, {})


def estimate_request(request: ReconstructionRequest, otf: RadialOTF, args: argparse.Namespace) -> Estimate:
    """Run :func:`~napari_sim_ml.engine.pipeline.estimate`; its warnings go to stderr."""
    est = estimate(request, otf)
    for result in est.results:
        for warning in result.warnings:
            print(f"napari-sim-ml: warning: {warning}", file=sys.stderr)
    return est
