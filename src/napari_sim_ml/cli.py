"""Command line: ``napari-sim-ml simulate | estimate | reconstruct | demo | batch``.

``batch INPUTS... -o OUTDIR`` reconstructs files and time-lapses lazily through dask.

Every user error ends with one readable line on stderr and exit status 2;
outputs are written atomically and never replace a file without --overwrite.
The shared options live in :mod:`napari_sim_ml.cli_options`, the reconstruction itself in
:mod:`napari_sim_ml.engine.pipeline`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from .batch import add_batch_parser, run_batch
from .cli_options import (
    UNCERTAINTY_SAMPLES,
    add_estimation,
    add_layout,
    add_method_flags,
    add_optics,
    check_flag_values,
    check_method_flags,
    estimate_request,
    k_from,
    load_planes,
    method_settings,
    request_from_args,
    resolve_optics,
)
from .engine.errors import SimInputError
from .engine.io import FrameLayout, read_raw, save_json, save_tiff, write_json
from .engine.metadata import ImageOptics, SimMetadata
from .engine.outputs import OutputSet, check_folder_writable, check_outputs
from .engine.parameters import (
    Optics,
    PatternParameters,
    check_pattern_optics,
    load_parameters_json,
    optics_from_dict,
)
from .engine.pipeline import Outputs, iter_planes, reconstruction_metadata, validate_planes
from .engine.simulate import DEFAULT_OPTICS


def build_parser() -> argparse.ArgumentParser:
    """Return the parser of every sub-command."""
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
    s.add_argument("--na", type=float, default=DEFAULT_OPTICS.na)
    s.add_argument("--wavelength-nm", type=float, default=DEFAULT_OPTICS.wavelength_nm)
    s.add_argument("--pixel-size-um", type=float, default=DEFAULT_OPTICS.pixel_size_um)
    s.add_argument("--overwrite", action="store_true")

    e = sub.add_parser("estimate", help="estimate pattern parameters and print them as JSON")
    e.add_argument("raw")
    add_optics(e)
    add_layout(e)
    add_estimation(e)
    e.add_argument("--json", help="write the JSON here instead of stdout")
    e.add_argument("--overwrite", action="store_true", help="replace an existing --json file")

    r = sub.add_parser("reconstruct", help="reconstruct a raw stack onto the 2x grid")
    r.add_argument("raw")
    r.add_argument("-o", "--output", required=True, help="reconstruction to write (.tif)")
    r.add_argument("--method", default="wiener", choices=("wiener", "pinn"))
    r.add_argument("--filter", default="wiener", choices=("wiener", "hifi"),
                   help="classical filter: generalised Wiener, or the spectrum-optimised two-step filter "
                        "(HiFi-SIM-like; --wiener is then its step-2 w, default 0.1)")
    add_optics(r)
    add_layout(r)
    r.add_argument("--params", help="parameters JSON (skips estimation; used exactly)")
    add_estimation(r)
    add_method_flags(r)
    r.add_argument("--widefield", help="also write the widefield image on the same 2x grid")
    r.add_argument("--uncertainty", help="PINN: write the per-pixel σ map here")
    r.add_argument("--uncertainty-samples", type=int,
                   help=f"PINN: bootstrap samples for the σ map (default {UNCERTAINTY_SAMPLES})")
    r.add_argument("--residual", help="PINN: write the normalised data-residual map here")
    r.add_argument("--denoised", help="with --denoiser: also write the denoised raw frames here")
    r.add_argument("--before-step2", metavar="FILE", help="with --step2: also write the reconstruction before step 2")
    r.add_argument("--overwrite", action="store_true")

    d = sub.add_parser("demo", help="simulate or read a sample, estimate, reconstruct, summarise")
    d.add_argument("raw", nargs="?", help="raw stack (default: simulate one)")
    d.add_argument("--out", default="demo-output", help="folder for the results")
    add_optics(d)  # for a raw file that does not state its optics
    d.add_argument("--overwrite", action="store_true")
    add_batch_parser(sub)
    from .denoise_cli import add_train_parser

    add_train_parser(sub)
    return parser


# ---------------------------------------------------------------- commands
def cmd_simulate(args: argparse.Namespace) -> int:
    """Write a simulated raw stack, its truth and its parameters (all three or none)."""
    from .engine.simulate import simulate_acquisition

    out = Path(args.output)
    truth_path = out.with_name(out.stem + "_truth.tif")
    params_path = out.with_name(out.stem + "_params.json")
    check_outputs([(out, "tiff"), (truth_path, "tiff"), (params_path, "json")], overwrite=args.overwrite)
    optics = Optics(args.na, args.wavelength_nm, args.pixel_size_um)
    sim = simulate_acquisition(args.structure, args.size, optics, n_angles=args.angles, n_phases=args.phases,
                               photons=args.photons, seed=args.seed)
    layout = FrameLayout(args.angles, args.phases, 1, "PAZ")
    params = sim.params.to_dict(optics)
    meta = SimMetadata(kind="raw", optics=ImageOptics.from_optics(optics), layout=asdict(layout),
                       background=sim.offset, params=params,
                       simulation={"structure": args.structure, "photons": args.photons, "seed": args.seed,
                                   "read_noise": sim.read_noise})
    truth_meta = SimMetadata(kind="truth", optics=ImageOptics.from_optics(optics, optics.pixel_size_um / 2))
    counts = np.clip(np.rint(sim.raw), 0, 65535).astype(np.uint16)  # as a camera stores them
    with OutputSet(args.overwrite) as outs:  # all three or none
        save_tiff(outs.stage(out), counts.reshape(-1, *sim.raw.shape[-2:]), optics.pixel_size_um, meta.to_dict())
        save_tiff(outs.stage(truth_path), sim.truth, optics.pixel_size_um / 2, truth_meta.to_dict())
        save_json(outs.stage(params_path), params)
        outs.commit()
    print(f"wrote {out} ({sim.raw.shape[0]}x{sim.raw.shape[1]} frames of {args.size}x{args.size} px), "
          f"{truth_path}, {params_path}")
    return 0


def cmd_estimate(args: argparse.Namespace) -> int:
    """Estimate the pattern parameters and print or write them as JSON."""
    check_flag_values(args)
    check_outputs([(args.json, "json")], inputs=(args.raw, args.otf, args.k_from), overwrite=args.overwrite)
    known, known_base = k_from(args)
    raw, planes, layout = load_planes(args)
    optics = resolve_optics(raw, args, known_base)
    request = request_from_args(args, raw, layout, optics, keep_k=known)
    result = estimate_request(request, request.otf.make(optics), args).results[0]
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
    """Reconstruct every plane of a raw stack; write the image and the maps asked for (all or none)."""
    check_method_flags(args)
    check_flag_values(args)
    check_outputs([(args.output, "tiff"), (args.widefield, "tiff"), (args.uncertainty, "tiff"),
                   (args.residual, "tiff"), (args.denoised, "tiff"), (args.before_step2, "tiff")],
                  inputs=(args.raw, args.params, args.k_from, args.otf, args.denoiser, args.step2),
                  overwrite=args.overwrite)
    known, known_base = k_from(args)  # --k-from with --params: one line before anything is read
    if args.before_step2 and not args.step2:
        raise SimInputError("--before-step2 writes the reconstruction before step 2: give --step2 STEP2.pt too")
    method = method_settings(args, uncertainty=bool(args.uncertainty))
    if method.name == "pinn":
        from .engine.pinn import PinnSettings

        PinnSettings(**(method.pinn or {}))  # its values are refused before any file is read
    raw, planes, layout = load_planes(args)
    base: dict[str, Any] = {}
    params: PatternParameters | None = None
    if args.params:
        params, base = load_parameters_json(args.params)
    optics = resolve_optics(raw, args, base or known_base)
    if params is not None:
        check_pattern_optics(params, optics)
    outputs = Outputs(widefield=bool(args.widefield), sigma=bool(args.uncertainty), residual=bool(args.residual))
    request = request_from_args(args, raw, layout, optics, params, method, outputs, keep_k=known)
    otf = request.otf.make(optics)
    t0 = time.perf_counter()
    est = estimate_request(request, otf, args)
    if params is None:
        params = est.results[0].params
        grades = ", ".join(f"{d.grade} ({d.quality:.0f})" for d in est.results[0].diagnostics)
        how = f"phases refitted at the k of {args.k_from}:" if args.k_from else "estimated"
        print(f"{how} {params.n_angles} angles: " + ", ".join(
            f"{a.angle_deg:.2f}° / {a.period_um * 1e3:.1f} nm / m={a.modulation[0]:.2f}" for a in params.angles)
            + f"; pattern quality {grades}")
    flat = planes.reshape(-1, *planes.shape[2:])
    validate_planes(flat, layout.n_z)  # a bad plane of a z-stack / time-lapse is named before anything is computed
    denoiser: dict[str, Any] | None = None
    measured, step2 = flat, None
    if args.step2:  # refused (one line) before anything is computed; the warning once on stderr
        from .denoise_cli import step2_prepare

        step2 = step2_prepare(args.step2, optics, params, method, bool(args.denoiser), args.denoiser_device)
    if args.denoiser:
        from .denoise_cli import denoise_planes

        flat, consistency = denoise_planes(flat, args.denoiser, optics, params, request.background,
                                           args.denoiser_device)
        print(f"denoised {len(flat)} plane(s) with {args.denoiser}; data consistency: {consistency}")
        denoiser = {"model": str(args.denoiser), "consistency": consistency}
    results = []
    for res in iter_planes(request, params, otf, planes=flat, validate=False,
                           noise_planes=measured if args.denoiser else None):
        if method.name == "wiener" and method.form == "wiener" and method.auto_wiener:
            print(f"Wiener w = {res.settings.wiener:.3g} (chosen from the data's noise)")
        _print_trust(res.image, flat[res.index], optics, params, otf, request.background, method.name,
                     res.noise_variance)
        results.append(res)
    if args.uncertainty and any(r.sigma is None for r in results):
        raise SimInputError("the PINN returned no σ map; nothing was written")
    plain = [r.image for r in results]
    if step2 is not None:
        from .denoise_cli import step2_images

        images, check = step2_images(plain, step2, measured, optics, params, otf, request.background)
        for r, image in zip(results, images, strict=True):
            r.image = image
        print(f"step 2 applied to {len(images)} plane(s) with {args.step2}; {check}")
        denoiser = {**(denoiser or {}), "step2": {"model": str(args.step2), "check": check,
                                                  "warning": "step 2 can distort true structures"}}
    meta = reconstruction_metadata(request, params, results[-1].settings, results[-1].pinn, denoiser=denoiser)
    stack = lambda name: np.stack([getattr(r, name) for r in results]) if len(results) > 1 \
        else getattr(results[0], name)  # noqa: E731
    out_px = optics.pixel_size_um / 2
    written = [args.output]
    with OutputSet(args.overwrite) as outs:  # every requested output, or none
        save_tiff(outs.stage(args.output), stack("image"), out_px, meta.to_dict())
        for path, name, kind, px in ((args.widefield, "widefield", "widefield", out_px),
                                     (args.uncertainty, "sigma", "uncertainty", out_px),
                                     (args.residual, "residual", "residual", optics.pixel_size_um)):
            if path:  # the residual is on the camera grid: its metadata says so too
                save_tiff(outs.stage(path), stack(name), px,
                          meta.replace(kind=kind, optics=ImageOptics.from_optics(optics, px)).to_dict())
                written.append(path)
        if args.before_step2 and step2 is not None:
            save_tiff(outs.stage(args.before_step2), np.stack(plain) if len(plain) > 1 else plain[0], out_px,
                      meta.replace(denoiser={k: v for k, v in (denoiser or {}).items() if k != "step2"}
                                   or None).to_dict())
            written.append(args.before_step2)
        if args.denoised and args.denoiser:
            raw_meta = meta.replace(kind="raw", layout=asdict(FrameLayout(params.n_angles, params.n_phases, 1, "PAZ")))
            save_tiff(outs.stage(args.denoised), flat.reshape(-1, *flat.shape[-2:]), optics.pixel_size_um,
                      raw_meta.to_dict())
            written.append(args.denoised)
        outs.commit()
    shape = results[0].image.shape
    print(f"reconstructed {len(results)} plane(s) with {method.name} in {time.perf_counter() - t0:.2f} s: "
          f"{shape[0]}x{shape[1]} px at {out_px * 1e3:.1f} nm; wrote {', '.join(written)}")
    return 0


def _print_trust(image: np.ndarray, plane: np.ndarray, optics: Optics, params: PatternParameters, otf: Any,
                 background: float, method: str, noise: float | None = None) -> None:
    """Print the truth-free figures of one reconstruction; warnings on stderr."""
    from .engine.trust import truth_free_report

    report = truth_free_report(image, plane, optics, params, otf, background, residual_warns=method != "wiener",
                               noise_variance=noise)
    for line in report.lines():
        print(line)
    for warning in report.warnings:
        print(f"WARNING: do not trust this result: {warning}", file=sys.stderr)


def cmd_demo(args: argparse.Namespace) -> int:
    """Simulate or read a sample, estimate, reconstruct and summarise it against its truth."""
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
        if optics is None:
            raise SimInputError(f"{params} states no optics")
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
    """Run one command; its exit status (2 with one line on stderr for a user error)."""
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
    """Run the console script: ``main``'s status as the exit status.

    After an interrupt (130) the
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
