"""What the estimator saw, as plain text and coordinates for the dock (no Qt, no napari).

From an :class:`~napari_sim_ml.engine.estimate.EstimationResult`: per angle the wave
vector k in cycles/µm and in Fourier pixels of the raw grid, the absolute phase of every
frame, the modulation per order (m1, and m2 for 3-beam), the pattern quality, the margin of
the chosen correlation peak over the runner-up and the cross-angle consistency note, and
the runner-up peak's position for drawing on a spectrum.

Fourier pixels: k_px = k · N · dx (cycles/µm × pixels × µm/pixel), N the frame size along
that axis; (row, col) = (ky_px, kx_px) from the spectrum's centre (zero frequency at
(Y // 2, X // 2)).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..engine.estimate import QUALITY_GRADES

WARN_GRADES = tuple(grade for _, grade in QUALITY_GRADES[:2])  # "inadequate", "low": the estimator's grades
NOT_ESTIMATED = ("loaded", "typed")  # grades of parameters from a file or typed into the table


@dataclass(frozen=True)
class AngleEvidence:
    """The evidence for one angle.

    k_cycles_per_um: first-order (kx, ky), cycles/µm; k_px: first-order (ky, kx) in Fourier
    pixels of the raw frame grid; phases_deg: absolute phase of every frame, degrees, in
    (−180, 180]; modulation: (m1,) or (m1, m2); margin: likelihood ratio of the chosen peak
    over the runner-up (inf when there was none); note: why the angle disagrees with the
    others ('' when it does not); runner_up_px: top-order (ky, kx) of the runner-up, or None.
    """

    index: int
    angle_deg: float
    k_cycles_per_um: tuple[float, float]
    k_px: tuple[float, float]
    phases_deg: tuple[float, ...]
    modulation: tuple[float, ...]
    quality: float
    grade: str
    margin: float
    note: str
    n_candidates: int
    runner_up_px: tuple[float, float] | None
    min_margin: float

    @property
    def k_magnitude(self) -> float:
        """|k| in cycles/µm."""
        return math.hypot(*self.k_cycles_per_um)

    @property
    def doubtful(self) -> bool:
        """True when the grade warns, the angle is inconsistent, or the margin is too small."""
        if self.grade in NOT_ESTIMATED:
            return False
        return self.grade in WARN_GRADES or bool(self.note) or self.margin < self.min_margin

    def reason(self) -> str:
        """One clause saying why the angle is doubtful ('' when it is not)."""
        if self.note:
            return self.note
        if self.margin < self.min_margin:
            return f"the runner-up peak is nearly as likely (margin {self.margin:.2f} < {self.min_margin:g})"
        if self.grade in WARN_GRADES:
            return f"the pattern quality {self.quality:.1f} is {self.grade}"
        return ""


def angle_evidence(result: Any, pixel_size_um: float, shape: tuple[int, int]) -> list[AngleEvidence]:
    """One :class:`AngleEvidence` per angle of ``result`` (an EstimationResult).

    Parameters
    ----------
    result : EstimationResult
        Parameters and per-angle diagnostics (``diagnostics`` may be empty for loaded parameters:
        quality, grade and margin are then NaN, 'loaded' and inf).
    pixel_size_um : float
        Raw camera pixel size, µm.
    shape : tuple of int
        (Y, X) of one raw frame, pixels.
    """
    from ..engine.candidates import MIN_MARGIN

    ny, nx = shape
    out = []
    diagnostics = tuple(result.diagnostics)
    for i, pattern in enumerate(result.params.angles):
        diag = diagnostics[i] if i < len(diagnostics) else None
        kx, ky = pattern.k_cycles_per_um
        runner = diag.runner_up_px if diag is not None else None
        out.append(AngleEvidence(
            index=i, angle_deg=pattern.angle_deg, k_cycles_per_um=(kx, ky),
            k_px=(ky * ny * pixel_size_um, kx * nx * pixel_size_um),
            phases_deg=tuple(math.degrees(p) for p in pattern.phases_rad),
            modulation=tuple(pattern.modulation),
            quality=float(diag.quality) if diag is not None else math.nan,
            grade=diag.grade if diag is not None else "loaded",
            margin=float(diag.margin) if diag is not None else math.inf,
            note=diag.note if diag is not None else "",
            n_candidates=len(diag.candidates) if diag is not None else 0,
            runner_up_px=tuple(float(v) for v in runner) if runner is not None else None,  # type: ignore[arg-type]
            min_margin=MIN_MARGIN,
        ))
    return out


def modulation_text(modulation: tuple[float, ...]) -> str:
    """'m1 0.81, m2 0.45' (3-beam) or 'm1 0.81' (2-beam)."""
    return ", ".join(f"m{b} {m:.2f}" for b, m in enumerate(modulation, start=1))


def margin_text(e: AngleEvidence) -> str:
    """Say the margin over the runner-up, or why there is none."""
    if e.grade in NOT_ESTIMATED:
        return f"{e.grade}, not estimated"
    if not math.isfinite(e.margin):
        return "none: k was given, not searched" if e.n_candidates == 0 else "no runner-up peak"
    return f"{e.margin:.3g}× over the runner-up" + (f" (below {e.min_margin:g})" if e.margin < e.min_margin else "")


def evidence_line(e: AngleEvidence) -> str:
    """Everything about one angle in one line of text."""
    kx, ky = e.k_cycles_per_um
    phases = ", ".join(f"{p:.1f}" for p in e.phases_deg)
    quality = "" if e.grade in NOT_ESTIMATED else f"; quality {e.quality:.1f} ({e.grade})"
    runner = ""
    if e.runner_up_px is not None:
        top = " (its second order)" if len(e.modulation) == 2 else ""
        runner = f" at ({e.runner_up_px[0]:.1f}, {e.runner_up_px[1]:.1f}) px{top}"
    line = (f"angle {e.index} ({e.angle_deg:.2f}°): |k| {e.k_magnitude:.4f} cycles/µm "
            f"(kx {kx:.4f}, ky {ky:.4f}) = (ky {e.k_px[0]:.2f}, kx {e.k_px[1]:.2f}) Fourier px; "
            f"phases {phases}°; {modulation_text(e.modulation)}{quality}; margin {margin_text(e)}{runner}")
    return line + (f" ⚠ {e.reason()}" if e.doubtful else "")


def evidence_text(result: Any, pixel_size_um: float, shape: tuple[int, int]) -> str:
    """One line per angle (see :func:`evidence_line`)."""
    return "\n".join(evidence_line(e) for e in angle_evidence(result, pixel_size_um, shape))


def grade_summary(result: Any) -> tuple[str, bool]:
    """(status text, warn): every angle's grade, and for each doubtful angle which one and why.

    warn is True when any angle is graded low or inadequate, is inconsistent with the others,
    or has a margin over its runner-up below the estimator's minimum.
    """
    evidence = angle_evidence(result, 1.0, (1, 1))
    if evidence and all(e.grade == "loaded" for e in evidence):
        return "pattern loaded from a parameters file (not estimated on these frames)", False
    grades = ", ".join(e.grade for e in evidence)
    doubts = [f"angle {e.index}: {e.reason()}" for e in evidence if e.doubtful]
    text = f"pattern quality: {grades}"
    if doubts:
        text += " — " + "; ".join(doubts)
    return text, bool(doubts)


def runner_up_points(result: Any, shape: tuple[int, int]) -> np.ndarray:
    """Return (row, col) of ± every order of each angle's runner-up peak.

    On a centred spectrum of ``shape``: (M, 2); empty (0, 2) when no angle has one.
    """
    cy, cx = shape[0] // 2, shape[1] // 2
    n_orders = result.params.n_orders
    points = []
    for diag in result.diagnostics:
        top = diag.runner_up_px
        if top is None:
            continue
        for b in range(1, n_orders + 1):
            for sign in (1, -1):
                points.append((cy + sign * top[0] * b / n_orders, cx + sign * top[1] * b / n_orders))
    return np.array(points, dtype=float).reshape(-1, 2)
