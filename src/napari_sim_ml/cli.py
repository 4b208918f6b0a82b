"""Command line: ``napari-sim-ml simulate | estimate | reconstruct | demo | batch``.

``batch INPUTS... -o OUTDIR`` reconstructs files and time-lapses lazily through dask.

Every user error ends with one readable line on stderr and exit status 2;
outputs are written atomically and never replace a file without --overwrite.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np

from .batch import add_batch_parser, run_batch
from .engine.errors import SimInputError
from .engine.io import (
    FrameLayout,
    RawFile,
    arrange_frames,
    guess_layout,
    read_raw,
    save_json,
    save_tiff,
    validate_plane,
    write_json,
)
from .engine.otf import RadialOTF, ideal_otf, otf_from_file
from .engine.outputs import OutputSet, check_folder_writable, check_outputs
from .engine.parameters import (
    FilterSettings,
    Optics,
    PatternParameters,
    check_pattern_optics,
    load_parameters_json,
    optics_from_dict,
)


def _add_optics(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("optics (override the file's metadata)")
    g.add_argument("--na", type=float, help="detection numerical aperture")
    g.add_argument("--wavelength-nm", type=float, help="emission wavelength, nm")
    g.add_argument("--pixel-size-um", type=float, help="raw camera pixel size in the sample, µm")
    g.add_argument("--immersion-index", type=float,
                   help="refractive index of the immersion medium (default: the file's, else oil 1.518)")


def _add_layout(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("frame layout (guessed from the frame count when omitted)")
    g.add_argument("--angles", type=int, help="number of pattern angles (2-5)")
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


def _add_estimation(p: argparse.ArgumentParser) -> None:
    p.add_argument("--relax-consistency", action="store_true",
                   help="judge each angle's peak alone, without preferring equal |k| and angles 180°/n apart "
                        "(inconsistent angles are still reported and graded at most 'low')")


def _add_method_flags(p: argparse.ArgumentParser) -> None:
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
    p.add_argument("--mode", choices=("noise-aware", "faithful"), help="PINN mode (default noise-aware)")
    p.add_argument("--iterations", type=int, help="PINN iterations (maximum)")
    p.add_argument("--seed", type=int, help="PINN seed (default 0)")
    from .denoise_cli import add_apply_flags

    add_apply_flags(p)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="napari-sim-ml", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    s = sub.add_parser("simulate", help="write a simulated raw SIM stack, its truth and parameters")
    s.add_argument("-o", "--output", required=True, help="raw stack to write (.tif)")
    s.add_argument("--structure", default="filaments",
                   choices=("filaments", "mesh", "rings", "lines", "grating", "linepairs"))
    s.add_argument("--photons", type=float, default=1000.0, help="expected photons at the brightest pixel")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--size", type=int, default=256, help="field size in raw pixels")
    s.add_argument("--phases", type=int, default=3, choices=(3, 5), help="3: 2-beam; 5: 3-beam")
    s.add_argument("--angles", type=int, default=3)
    s.add_argument("--na", type=float, default=1.4)
    s.add_argument("--wavelength-nm", type=float, default=525.0)
    s.add_argument("--pixel-size-um", type=float, default=0.08)
    s.add_argument("--overwrite", action="store_true")

    e = sub.add_parser("estimate", help="estimate pattern parameters and print them as JSON")
    e.add_argument("raw")
    _add_optics(e)
    _add_layout(e)
    _add_estimation(e)
    e.add_argument("--json", help="write the JSON here instead of stdout")
    e.add_argument("--overwrite", action="store_true", help="replace an existing --json file")

    r = sub.add_parser("reconstruct", help="reconstruct a raw stack onto the 2x grid")
    r.add_argument("raw")
    r.add_argument("-o", "--output", required=True, help="reconstruction to write (.tif)")
    r.add_argument("--method", default="wiener", choices=("wiener", "pinn"))
    r.add_argument("--filter", default="wiener", choices=("wiener", "hifi"),
                   help="classical filter: generalised Wiener, or the spectrum-optimised two-step filter "
                        "(HiFi-SIM-like; --wiener is then its step-2 w, default 0.1)")
    _add_optics(r)
    _add_layout(r)
    r.add_argument("--params", help="parameters JSON (skips estimation; used exactly)")
    _add_estimation(r)
    _add_method_flags(r)
    r.add_argument("--widefield", help="also write the widefield image on the same 2x grid")
    r.add_argument("--uncertainty", help="PINN: write the per-pixel σ map here")
    r.add_argument("--uncertainty-samples", type=int,
                   help=f"PINN: bootstrap samples for the σ map (default {UNCERTAINTY_SAMPLES})")
    r.add_argument("--residual", help="PINN: write the normalised data-residual map here")
    r.add_argument("--denoised", help="with --denoiser: also write the denoised raw frames here")
    r.add_argument("--overwrite", action="store_true")

    d = sub.add_parser("demo", help="simulate or read a sample, estimate, reconstruct, summarise")
    d.add_argument("raw", nargs="?", help="raw stack (default: simulate one)")
    d.add_argument("--out", default="demo-output", help="folder for the results")
    _add_optics(d)  # for a raw file that does not state its optics
    d.add_argument("--overwrite", action="store_true")
    add_batch_parser(sub)
    from .denoise_cli import add_train_parser

    add_train_parser(sub)
    return parser


# ---------------------------------------------------------------- helpers
UNCERTAINTY_SAMPLES = 8  # PINN bootstrap samples for --uncertainty when --uncertainty-samples is not given
OIL_INDEX = 1.518  # the highest immersion index in common use, assumed when nothing states the medium


def _first_given(*values: Any) -> Any:
    """The first value that is not None (0 is a value: it is checked, never replaced)."""
    return next((v for v in values if v is not None), None)


def resolve_optics(raw: RawFile, args: argparse.Namespace, base: dict[str, Any] | None = None) -> Optics:
    """Optics from flags, else the parameters JSON, else the file's metadata."""
    base = base or {}
    values: dict[str, Any] = {}
    for key, flag in (("na", "--na"), ("wavelength_nm", "--wavelength-nm"), ("pixel_size_um", "--pixel-size-um")):
        value = _first_given(getattr(args, key, None), base.get(key), getattr(raw, key))
        if value is None:
            raise SimInputError(f"{raw.path.name} does not state the {key.replace('_', ' ')}; give {flag}")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
            raise SimInputError(f"the {key.replace('_', ' ')} must be a number, not {value!r}")
        values[key] = float(value)
    immersion = _first_given(getattr(args, "immersion_index", None), base.get("immersion_index"),
                             getattr(raw, "immersion_index", None))
    if immersion is None and values["na"] > OIL_INDEX:
        raise SimInputError(f"numerical aperture {values['na']} is above the refractive index of oil "
                            f"({OIL_INDEX}); give --immersion-index for a higher-index immersion medium")
    return Optics(**values, immersion_index=None if immersion is None else float(immersion))


def check_flag_values(args: argparse.Namespace) -> None:
    """Values given as flags are checked at once (before any file is read), each on its own."""
    for key in ("na", "wavelength_nm", "pixel_size_um"):
        value = getattr(args, key, None)
        if value is not None:
            Optics(**{key: value})  # raises the range error
    if getattr(args, "immersion_index", None) is not None and not 1.0 <= args.immersion_index <= 2.0:
        raise SimInputError(f"immersion refractive index {args.immersion_index} is outside 1.0-2.0")
    if getattr(args, "background", None) is not None and not np.isfinite(args.background):
        raise SimInputError(f"--background must be a finite number, not {args.background}")
    if getattr(args, "wiener", None) is not None:
        FilterSettings(args.wiener, args.apo_cutoff, args.apo_bend, args.attenuation, args.attenuation_fwhm)


def check_method_flags(args: argparse.Namespace) -> None:
    """PINN-only flags with the Wiener method are refused; then the PINN defaults are filled in."""
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
        args.mode = "noise-aware"
    if args.seed is None:
        args.seed = 0


def resolve_layout(raw: RawFile, args: argparse.Namespace) -> FrameLayout:
    """Flags override the file's stored layout; the rest is guessed from the frame count."""
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


def resolve_otf(args: argparse.Namespace, optics: Optics) -> RadialOTF:
    if args.otf:
        return otf_from_file(args.otf, optics.pixel_size_um)
    return ideal_otf(optics, attenuation=args.otf_attenuation)


def _params_layout(args: argparse.Namespace) -> dict[str, int]:
    """Angles and phases of a given parameters JSON (``--params``): they state the layout."""
    path = getattr(args, "params", None)
    if not path:
        return {}
    try:
        params, _ = load_parameters_json(path)
    except (SimInputError, OSError, ValueError):
        return {}  # the command reports the bad file itself
    return {"n_angles": params.n_angles, "n_phases": params.n_phases}


def layout_from_frames(raw: RawFile, args: argparse.Namespace) -> FrameLayout:
    """resolve_layout, except that when neither flags nor metadata give angles and phases the
    layout is found from the frames (engine/layout.py, reported on stderr), and a given layout
    that another fits clearly better draws a one-line warning naming that layout.
    """
    from .engine.layout import check_layout, detect_layout

    stated = {**raw.extra.get("layout", {}), **_params_layout(args),
              **{k: v for k, v in (("n_angles", args.angles), ("n_phases", args.phases)) if v}}
    frames = raw.frames
    try:
        optics = resolve_optics(raw, args)
    except SimInputError:  # no optics: the count-based guess (the command then asks for them)
        return resolve_layout(raw, args)
    if frames.ndim != 3 or min(frames.shape[-2:]) < 32 or not np.isfinite(frames[: min(len(frames), 64)]).all():
        return resolve_layout(raw, args)  # the command reports what is wrong with the frames
    background = _background(args, raw)
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
    from .engine.mosaic import apply_mosaic
    from .engine.sequence import select_frames

    mosaic = getattr(args, "mosaic", None)  # a mosaic file may hold one 2-D image: one plane's frames
    raw = apply_mosaic(select_frames(read_raw(args.raw, require_frames=not mosaic), getattr(args, "frames", None)),
                       mosaic)
    layout = resolve_layout(raw, args) if mosaic else layout_from_frames(raw, args)  # a mosaic fixes the order
    planes = arrange_frames(raw.frames, layout)
    return raw, planes, layout


def _background(args: argparse.Namespace, raw: RawFile) -> float:
    if args.background is not None:
        return float(args.background)
    return float(raw.extra.get("camera_offset", 0.0))


def _estimate(plane: np.ndarray, optics: Optics, otf: RadialOTF, args: argparse.Namespace, background: float):
    from .engine.estimate import estimate_pattern

    result = estimate_pattern(plane, optics, otf=otf, n_orders=args.orders, background=background,
                              consistency_prior=not getattr(args, "relax_consistency", False))
    for warning in result.warnings:
        print(f"napari-sim-ml: warning: {warning}", file=sys.stderr)
    return result


# ---------------------------------------------------------------- commands
def cmd_simulate(args: argparse.Namespace) -> int:
    from .engine.simulate import simulate_acquisition

    out = Path(args.output)
    truth_path = out.with_name(out.stem + "_truth.tif")
    params_path = out.with_name(out.stem + "_params.json")
    check_outputs([(out, "tiff"), (truth_path, "tiff"), (params_path, "json")], overwrite=args.overwrite)
    optics = Optics(args.na, args.wavelength_nm, args.pixel_size_um)
    sim = simulate_acquisition(args.structure, args.size, optics, n_angles=args.angles, n_phases=args.phases,
                               photons=args.photons, seed=args.seed)
    layout = FrameLayout(args.angles, args.phases, 1, "PAZ")
    meta = {"kind": "raw", "optics": asdict(optics), "layout": asdict(layout),
            "camera_offset": sim.offset, "simulation": {"structure": args.structure, "photons": args.photons,
                                                          "seed": args.seed, "read_noise": sim.read_noise}}
    params = sim.params.to_dict(optics)
    counts = np.clip(np.rint(sim.raw), 0, 65535).astype(np.uint16)  # as a camera stores them
    fine = {**asdict(optics), "pixel_size_um": optics.pixel_size_um / 2}
    with OutputSet(args.overwrite) as outs:  # all three or none
        save_tiff(outs.stage(out), counts.reshape(-1, *sim.raw.shape[-2:]), optics.pixel_size_um,
                  {**meta, "params": params})
        save_tiff(outs.stage(truth_path), sim.truth, optics.pixel_size_um / 2, {"kind": "truth", "optics": fine})
        save_json(outs.stage(params_path), params)
        outs.commit()
    print(f"wrote {out} ({sim.raw.shape[0]}x{sim.raw.shape[1]} frames of {args.size}x{args.size} px), "
          f"{truth_path}, {params_path}")
    return 0


def cmd_estimate(args: argparse.Namespace) -> int:
    check_flag_values(args)
    check_outputs([(args.json, "json")], inputs=(args.raw, args.otf), overwrite=args.overwrite)
    raw, planes, layout = load_planes(args)
    optics = resolve_optics(raw, args)
    result = _estimate(planes[0, planes.shape[1] // 2], optics, resolve_otf(args, optics), args, _background(args, raw))
    out = result.params.to_dict(optics)
    out["quality"] = [{"quality": d.quality, "grade": d.grade, "modulation_measured": list(d.modulation_measured),
                       "margin": d.margin, "note": d.note} for d in result.diagnostics]
    if args.json:
        write_json(args.json, out, overwrite=args.overwrite)
        print(f"wrote {args.json}")
    else:
        print(json.dumps(out, indent=2))
    return 0


def cmd_reconstruct(args: argparse.Namespace) -> int:
    from .engine.wiener import prepare_reconstruction, wiener_filter

    check_method_flags(args)
    check_flag_values(args)
    check_outputs([(args.output, "tiff"), (args.widefield, "tiff"), (args.uncertainty, "tiff"),
                   (args.residual, "tiff"), (args.denoised, "tiff")],
                  inputs=(args.raw, args.params, args.otf, args.denoiser), overwrite=args.overwrite)
    pinn_settings = None
    if args.method == "pinn":
        from .engine.pinn import PinnSettings

        n_unc = (_first_given(args.uncertainty_samples, UNCERTAINTY_SAMPLES) if args.uncertainty else 0)
        pinn_settings = PinnSettings(mode=args.mode, seed=args.seed, iterations=args.iterations,
                                     uncertainty_samples=n_unc)
    raw, planes, layout = load_planes(args)
    base: dict[str, Any] = {}
    params: PatternParameters | None = None
    if args.params:
        params, base = load_parameters_json(args.params)
    optics = resolve_optics(raw, args, base)
    if params is not None:
        check_pattern_optics(params, optics)
    otf = resolve_otf(args, optics)
    background = _background(args, raw)
    t0 = time.perf_counter()
    if params is None:
        result = _estimate(planes[0, planes.shape[1] // 2], optics, otf, args, background)
        params = result.params
        grades = ", ".join(f"{d.grade} ({d.quality:.0f})" for d in result.diagnostics)
        print(f"estimated {params.n_angles} angles: " + ", ".join(
            f"{a.angle_deg:.2f}° / {a.period_um * 1e3:.1f} nm / m={a.modulation[0]:.2f}" for a in params.angles)
            + f"; pattern quality {grades}")
    if (params.n_angles, params.n_phases) != planes.shape[2:4]:
        raise SimInputError(f"the parameters describe {params.n_angles} angles × {params.n_phases} phases "
                            f"but the stack has {planes.shape[2]} × {planes.shape[3]}")
    settings = FilterSettings(FilterSettings().wiener if args.wiener is None else args.wiener, args.apo_cutoff,
                              args.apo_bend, args.attenuation, args.attenuation_fwhm)
    flat = planes.reshape(-1, *planes.shape[2:])
    if len(flat) > 1:  # a bad plane of a z-stack / time-lapse is named before anything is computed
        for n, plane in enumerate(flat):
            try:
                validate_plane(plane)
            except SimInputError as exc:
                t, z = divmod(n, planes.shape[1])
                raise SimInputError(f"time point {t}, z plane {z}: {exc}") from None
    images, widefields, sigmas, residuals = [], [], [], []
    extra_meta: dict[str, Any] = {}
    if args.denoiser:
        from .denoise_cli import denoise_planes

        flat, consistency = denoise_planes(flat, args.denoiser, optics, params, background, args.denoiser_device)
        print(f"denoised {len(flat)} plane(s) with {args.denoiser}; data consistency: {consistency}")
        extra_meta["denoiser"] = {"model": str(args.denoiser), "consistency": consistency}
    for plane in flat:
        if args.method == "wiener":
            prepared = prepare_reconstruction(plane, optics, params, otf, background)
            if args.filter == "hifi":
                from .engine.filters import HIFI_W2, hifi_filter

                settings = replace(settings, wiener=HIFI_W2 if args.wiener is None else args.wiener)
                images.append(hifi_filter(prepared, settings))
                widefields.append(prepared.widefield)
                _print_trust(images[-1], plane, optics, params, otf, background, args.method,
                             prepared.frame_noise_variance)
                continue
            if args.wiener is None:
                from .engine.filters import auto_wiener

                settings = replace(settings, wiener=auto_wiener(prepared, settings))
                print(f"Wiener w = {settings.wiener:.3g} (chosen from the data's noise)")
            images.append(wiener_filter(prepared, settings))
            widefields.append(prepared.widefield)
            noise = prepared.frame_noise_variance
        else:
            from .engine.pinn import fit_pinn

            res = fit_pinn(plane, optics, params, pinn_settings, otf=otf, background=background)
            images.append(res.image)
            sigmas.append(res.sigma)
            residuals.append(res.residual)
            extra_meta = {"pinn": {"mode": args.mode, "iterations": res.iterations, "device": res.device,
                                   "seconds": res.seconds, "seed": args.seed}}
            if args.widefield:
                widefields.append(prepare_reconstruction(plane, optics, params, otf, background).widefield)
        _print_trust(images[-1], plane, optics, params, otf, background, args.method,
                     noise if args.method == "wiener" else None)
    stack = lambda xs: np.stack(xs) if len(xs) > 1 else xs[0]  # noqa: E731
    meta = {"kind": "reconstruction", "method": args.method, "source": str(raw.path),
            "optics": {**asdict(optics), "pixel_size_um": optics.pixel_size_um / 2},
            "raw_pixel_size_um": optics.pixel_size_um, "params": params.to_dict(optics),
            "filter": {**asdict(settings), "form": args.filter}, "layout": asdict(layout), "background": background,
            **extra_meta, **({"z_step_um": raw.z_step_um} if raw.z_step_um and layout.n_z > 1 else {})}
    out_px = optics.pixel_size_um / 2
    if args.uncertainty and (not sigmas or any(s is None for s in sigmas)):
        raise SimInputError("the PINN returned no σ map; nothing was written")
    written = [args.output]
    with OutputSet(args.overwrite) as outs:  # every requested output, or none
        save_tiff(outs.stage(args.output), stack(images), out_px, meta)
        if args.widefield:
            save_tiff(outs.stage(args.widefield), stack(widefields), out_px, {**meta, "kind": "widefield"})
            written.append(args.widefield)
        if args.uncertainty:
            save_tiff(outs.stage(args.uncertainty), stack(sigmas), out_px, {**meta, "kind": "uncertainty"})
            written.append(args.uncertainty)
        if args.residual:
            save_tiff(outs.stage(args.residual), stack(residuals), optics.pixel_size_um,  # camera grid
                      {**meta, "kind": "residual", "optics": asdict(optics)})
            written.append(args.residual)
        if args.denoised and args.denoiser:
            save_tiff(outs.stage(args.denoised), flat.reshape(-1, *flat.shape[-2:]), optics.pixel_size_um,
                      {**meta, "kind": "raw",
                       "layout": asdict(FrameLayout(params.n_angles, params.n_phases, 1, "PAZ"))})
            written.append(args.denoised)
        outs.commit()
    shape = images[0].shape
    print(f"reconstructed {len(images)} plane(s) with {args.method} in {time.perf_counter() - t0:.2f} s: "
          f"{shape[0]}x{shape[1]} px at {out_px * 1e3:.1f} nm; wrote {', '.join(written)}")
    return 0


def _print_trust(image: np.ndarray, plane: np.ndarray, optics: Optics, params: PatternParameters, otf: Any,
                 background: float, method: str, noise: float | None = None) -> None:
    """The truth-free figures of one reconstruction; warnings on stderr."""
    from .engine.trust import truth_free_report

    report = truth_free_report(image, plane, optics, params, otf, background, residual_warns=method != "wiener",
                               noise_variance=noise)
    for line in report.lines():
        print(line)
    for warning in report.warnings:
        print(f"WARNING: do not trust this result: {warning}", file=sys.stderr)


def cmd_demo(args: argparse.Namespace) -> int:
    from .engine.metrics import compare_to_truth, decorrelation_resolution, sim_passband_truth

    out = Path(args.out)
    recon, widefield, params = out / "reconstruction.tif", out / "widefield.tif", out / "params.json"
    simulated = [(out / "raw.tif", "tiff"), (out / "raw_truth.tif", "tiff"), (out / "raw_params.json", "json")]
    planned = [(recon, "tiff"), (widefield, "tiff"), (params, "json")] + ([] if args.raw else simulated)
    if out.exists() and not out.is_dir():
        raise SimInputError(f"{out} is a file, not a folder")
    if not out.exists():  # checked before the folder is made, so a refused run leaves nothing behind
        check_folder_writable(out.parent if str(out.parent) else Path("."))
    else:
        check_outputs(planned, inputs=(args.raw,), overwrite=args.overwrite)
    if args.raw:
        read_raw(args.raw)  # an unreadable input is reported before anything is written
    out.mkdir(parents=True, exist_ok=True)
    over = ["--overwrite"] if args.overwrite else []
    optics_flags = [str(v) for flag, dest in (("--na", "na"), ("--wavelength-nm", "wavelength_nm"),
                                              ("--pixel-size-um", "pixel_size_um"),
                                              ("--immersion-index", "immersion_index"))
                    if getattr(args, dest) is not None for v in (flag, getattr(args, dest))]
    truth = None
    if args.raw:
        raw_path = Path(args.raw)
        truth_file = raw_path.with_name(raw_path.stem + "_truth.tif")
        truth = read_raw(truth_file, require_frames=False).frames if truth_file.exists() else None
    else:
        raw_path = out / "raw.tif"
        cmd_simulate(build_parser().parse_args(["simulate", "-o", str(raw_path)] + over))
        truth = read_raw(out / "raw_truth.tif", require_frames=False).frames
    cmd_estimate(build_parser().parse_args(["estimate", str(raw_path), "--json", str(params)] + over
                                           + optics_flags))
    cmd_reconstruct(build_parser().parse_args(
        ["reconstruct", str(raw_path), "-o", str(recon), "--widefield", str(widefield), "--params", str(params)]
        + over + optics_flags))
    sr = read_raw(recon, require_frames=False)
    wf = read_raw(widefield, require_frames=False)
    px = sr.pixel_size_um or 0.0
    print(f"resolution (decorrelation): widefield {decorrelation_resolution(wf.frames, px) * 1e3:.0f} nm, "
          f"SIM {decorrelation_resolution(sr.frames, px) * 1e3:.0f} nm")
    if truth is not None:
        p_json, _ = load_parameters_json(params)
        optics = optics_from_dict(json.loads(params.read_text()))
        ref = sim_passband_truth(truth, optics, p_json)
        for name, img in (("widefield", wf.frames), ("SIM", sr.frames)):
            psnr, ssim = compare_to_truth(img, ref)
            print(f"{name:>9} vs truth: PSNR {psnr:.2f} dB, SSIM {ssim:.3f}")
    return 0


COMMANDS = {"simulate": cmd_simulate, "estimate": cmd_estimate, "reconstruct": cmd_reconstruct, "demo": cmd_demo,
            "batch": run_batch, "train-denoiser": lambda a: _train_denoiser(a)}


def _train_denoiser(args: argparse.Namespace) -> int:
    from .denoise_cli import cmd_train_denoiser

    return cmd_train_denoiser(args)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        status = COMMANDS[args.command](args)
        for note in getattr(args, "notes", []):
            print(note, file=sys.stderr)
        return status
    except SimInputError as exc:
        print(f"napari-sim-ml: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("napari-sim-ml: interrupted", file=sys.stderr)
        return 130
    except MemoryError:
        print("napari-sim-ml: error: out of memory; reconstruct a smaller crop", file=sys.stderr)
        return 2
    except Exception as exc:  # a bug: one line, traceback only on request
        if os.environ.get("NAPARI_SIM_ML_DEBUG"):
            raise
        print(f"napari-sim-ml: internal error: {type(exc).__name__}: {exc} "
              "(set NAPARI_SIM_ML_DEBUG=1 for a traceback)", file=sys.stderr)
        return 1


def entry() -> None:
    """The console script: ``main``'s status as the exit status. After an interrupt (130) the
    process ends at once, once every ``finally`` has run (temporary files removed, workers ended):
    a batch's driver thread waiting on cancelled tasks must not hold the exit.
    """
    status = main()
    if status == 130:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(130)
    sys.exit(status)


if __name__ == "__main__":
    entry()
