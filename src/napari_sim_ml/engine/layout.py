"""Frame layout found from the frames themselves: angles × phases, order, planes.

Each layout the frame count allows (angles × phases in LAYOUT_SHAPES; orders PAZ, APZ, PZA,
ZAP; for PZA/ZAP every plane count dividing the sets) is scored on the first plane it
implies, cropped to the central CROP_PX² (never binned: binning would alias the pattern):

* per angle, the first-order band cross-correlation's peak over its median (as the estimator's
  quality), whether it moves with the phase steps (candidates.rotation), and whether the
  frames' own peak there steps by 2π/P from frame to frame, closing the cycle (TOL_STEP);
* across angles, consistency (equal |k|, directions 180°/n apart, none shared) and the
  agreement of the angles' mean images (each is the same widefield image);
* a small preference (SIMPLICITY) for order PAZ and one plane, when nothing else decides.

score = mean over angles of log(height) − ½ Σ (deviation / tolerance)², a peak that does not
move −2. Frames of one angle read as several (or several as one) mix patterns: the peaks
drop, duplicate or scatter. Orders PAZ and APZ cannot tell planes from time points (both
keep a set's frames together), so their extra sets are reported as time points.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.fft

from .bands import band_orders
from .candidates import deviations, rotation
from .errors import SimInputError
from .io import FrameLayout, arrange_frames
from .parameters import Optics, equidistant_phases

LAYOUT_SHAPES = ((3, 3), (3, 5), (5, 3), (5, 5), (4, 3), (2, 3), (3, 4), (4, 5), (5, 4), (2, 5))
ORDERS = ("PAZ", "APZ", "PZA", "ZAP")
CROP_PX = 128
WEAK_SCORE = 0.0  # a best score below this: the pattern is too faint on the crop to tell layouts apart
WEAK_CROP_PX = 256  # ... then the layouts are scored again on this larger crop (4× the pixels), and a best
# score still below WEAK_SCORE is reported 'uncertain' whatever the margin (on the real 3-beam low-light set,
# upsampled 2×, the 128² crop's best was a wrong 5 × 3 APZ at −8.0, 'clear' by 6.4; on 256² 3 × 5 PAZ at +1.0)
TOL_K, TOL_DEG = 0.05, 4.0  # consistency tolerances on the cropped grid (1 px of k ≈ 2 %)
CLEAR_MARGIN = 1.0  # score difference (log units) above which a choice is 'clear'
MAX_PLANES = 64
MIN_GUESSED_ANGLES = 3  # 2-angle layouts are tried only when --angles 2 is given
TOL_STEP = 0.3  # rad, phase-step tolerance
WIDEFIELD_WEIGHT = 1.0  # × log of the angles' mean-image correlation
SIMPLICITY = 0.3  # score given up per departure from the common layout (order PAZ, one plane)


@dataclass(frozen=True)
class LayoutScore:
    """A layout and its score (log units; higher fits better)."""

    layout: FrameLayout
    score: float


@dataclass(frozen=True)
class LayoutChoice:
    """The best layout, its margin over the runner-up (score units) and every score, best first."""

    layout: FrameLayout
    margin: float
    scores: tuple[LayoutScore, ...]

    @property
    def weak(self) -> bool:
        """Whether even the best layout shows the pattern too faintly to be told from the others."""
        return self.scores[0].score < WEAK_SCORE

    @property
    def confidence(self) -> str:
        """'clear' (margin ≥ CLEAR_MARGIN and not weak) or 'uncertain'."""
        return "clear" if self.margin >= CLEAR_MARGIN and not self.weak else "uncertain"

    def describe(self) -> str:
        """One line: the layout, how sure, the margin and the runner-up."""
        lay = self.layout
        runner = f"; runner-up {describe_layout(self.scores[1].layout)}" if len(self.scores) > 1 else ""
        faint = (f": the pattern is too faint to tell layouts apart (best score {self.scores[0].score:.1f}); "
                 "give --angles, --phases and --order") if self.weak else ""
        return (f"layout {describe_layout(lay)} found from the frames ({self.confidence}{faint}, "
                f"margin {self.margin:.1f}{runner})")


def describe_layout(layout: FrameLayout) -> str:
    """Describe a layout in words: angles × phases [× planes], order."""
    z = f" × {layout.n_z} planes" if layout.n_z > 1 else ""
    return f"{layout.n_angles} angles × {layout.n_phases} phases{z}, order {layout.order}"


def candidate_layouts(n_frames: int, n_angles: int | None = None, n_phases: int | None = None,
                      n_z: int | None = None, order: str | None = None) -> list[FrameLayout]:
    """Every layout the frame count allows, agreeing with whatever is given."""
    out: dict[tuple, FrameLayout] = {}
    for a, p in LAYOUT_SHAPES:
        if a < MIN_GUESSED_ANGLES and not n_angles:
            continue  # two angles leave the plane's resolution anisotropic: only when stated
        if (n_angles and a != n_angles) or (n_phases and p != n_phases) or n_frames % (a * p):
            continue
        sets = n_frames // (a * p)
        for o in ORDERS:
            if order and FrameLayout(a, p, 1, order).order != o:
                continue
            zs = [n_z] if n_z else ([1] if o in ("PAZ", "APZ") else
                                    [z for z in range(1, min(sets, MAX_PLANES) + 1) if sets % z == 0])
            for z in zs:
                if sets % z:
                    continue
                lay = FrameLayout(a, p, z, o)
                first = tuple(_first_plane_indices(n_frames, lay))
                out.setdefault((a, p, first), lay)  # orders that read the first plane alike are one candidate
    return list(out.values())


def _reading(n_frames: int, layout: FrameLayout) -> tuple[int, int, list[int]]:
    """Return what a layout makes of the first plane: angles, phases and the frames in that order."""
    return layout.n_angles, layout.n_phases, _first_plane_indices(n_frames, layout).tolist()


def _first_plane_indices(n_frames: int, layout: FrameLayout) -> np.ndarray:
    idx = np.arange(layout.frames_per_set * (n_frames // layout.frames_per_set))[:, None, None]
    return arrange_frames(idx, layout)[0, 0].ravel()


def _crop(frames: np.ndarray, size: int = CROP_PX) -> np.ndarray:
    ny, nx = frames.shape[-2:]
    cy, cx = max(0, (ny - size) // 2), max(0, (nx - size) // 2)
    return np.asarray(frames[..., cy:cy + size, cx:cx + size], dtype=np.float32)


class _Scorer:
    """Scores layouts on the cropped, windowed frames; each frame's FFT is computed once."""

    def __init__(self, frames: np.ndarray, optics: Optics, background: float,
                 k_range: tuple[float, float] = (0.3, 1.1), crop: int = CROP_PX) -> None:
        self.frames, self.background, self.crop = frames, background, crop
        ny, nx = _crop(frames[:1], crop).shape[-2:]
        kc = optics.cutoff_cycles_per_um
        kr = np.hypot(np.fft.fftfreq(ny, optics.pixel_size_um)[:, None],
                      np.fft.fftfreq(nx, optics.pixel_size_um)[None, :])
        self.annulus = (kr >= k_range[0] * kc) & (kr <= k_range[1] * kc)
        self.weight = ((kr < kc) * (1.0 - np.exp(-(kr / (0.15 * kc)) ** 2))).astype(np.float32)
        self.window = np.outer(np.hanning(ny), np.hanning(nx)).astype(np.float32)
        self.cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self.angles: dict[tuple[int, ...], tuple[float, tuple[float, float], np.ndarray]] = {}

    def _frame(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """(cropped frame − its mean) and its windowed spectrum."""
        if i not in self.cache:
            f = _crop(self.frames[i], self.crop) - np.float32(self.background)
            f = f - f.mean()
            self.cache[i] = (f, scipy.fft.fft2(f * self.window).astype(np.complex64))
        return self.cache[i]

    def _angle(self, row: tuple[int, ...]) -> tuple[float, tuple[float, float], np.ndarray]:
        """Score one angle's frames.

        One angle's frames (file indices): its score terms, peak (Fourier px) and mean image; cached
        (layouts share angles).
        """
        if row in self.angles:
            return self.angles[row]
        n_phases = len(row)
        n_orders = 2 if n_phases >= 5 else 1
        top = 1  # first order for every phase count (its peak height compares across layouts)
        unmix = np.linalg.pinv(np.exp(1j * np.outer(equidistant_phases(n_phases), band_orders(n_orders))))
        crops, spectra = zip(*(self._frame(i) for i in row), strict=False)
        spectra = np.stack(spectra)
        # a plain weighted sum: BLAS (tensordot) spins its threads on these small products
        b0 = sum(np.complex64(w) * sp for w, sp in zip(unmix[0], spectra, strict=False))
        bt = sum(np.complex64(w) * sp for w, sp in zip(unmix[top], spectra, strict=False))
        corr = np.abs(scipy.fft.fft2(scipy.fft.ifft2(bt * self.weight) * np.conj(scipy.fft.ifft2(b0 * self.weight))))
        masked = np.where(self.annulus, corr, 0.0)
        iy, ix = np.unravel_index(np.argmax(masked), masked.shape)
        height = masked[iy, ix] / max(float(np.median(corr[self.annulus])), 1e-30)
        value = math.log(max(height, 1.0))
        if rotation(corr[iy, ix], corr[-iy, -ix]) < 0.75:
            value -= 2.0
        # the frames' own peak at s must step by 2π/P from frame to frame, closing the cycle
        a = spectra[:, iy, ix] - spectra[:, iy, ix].mean()
        steps = np.angle(np.roll(a, -1) * np.conj(a)) - 2 * np.pi / n_phases  # last → first too
        value -= 0.5 * float(np.mean(np.minimum((np.angle(np.exp(1j * steps)) / TOL_STEP) ** 2, 20.0)))
        ny, nx = corr.shape
        k = (float(iy if iy <= ny // 2 else iy - ny), float(ix if ix <= nx // 2 else ix - nx))
        self.angles[row] = (value, k, np.mean(crops, axis=0).ravel())
        return self.angles[row]

    def score(self, layout: FrameLayout) -> float:
        """Score a layout by the first plane it implies (log units, higher fits better)."""
        idx = _first_plane_indices(self.frames.shape[0], layout).reshape(layout.n_angles, layout.n_phases)
        n_angles = idx.shape[0]
        total = 0.0
        ks: list[tuple[float, float]] = []
        means: list[np.ndarray] = []
        for row in idx:
            value, k, mean = self._angle(tuple(int(i) for i in row))
            total, ks, means = total + value, ks + [k], means + [mean]
        if n_angles > 1:
            dk, dev = deviations(ks, self.annulus.shape)
            total -= 0.5 * sum(min((a / TOL_K) ** 2 + (b / TOL_DEG) ** 2, 20.0) for a, b in zip(dk, dev, strict=False))
            # every angle's mean is the same widefield image
            rho = np.corrcoef(np.array(means))[np.triu_indices(n_angles, 1)]
            total += WIDEFIELD_WEIGHT * n_angles * math.log(max(float(np.mean(rho)), 0.01))
        simpler = (layout.order != "PAZ") + (layout.n_z > 1)
        return total / n_angles - SIMPLICITY * simpler


def detect_layout(frames: np.ndarray, optics: Optics, background: float = 0.0, **given: object) -> LayoutChoice:
    """Find the layout (among candidate_layouts(len(frames), **given)) whose first plane scores best.

    frames: (F, Y, X) in file order; given: n_angles, n_phases, n_z, order when known.
    Raises SimInputError when no layout fits the frame count.
    """
    layouts = candidate_layouts(frames.shape[0], **given)  # type: ignore[arg-type]
    if not layouts:
        raise SimInputError(f"{frames.shape[0]} frames do not match any usual angles × phases layout; "
                            "give --angles and --phases")
    return _detect(frames, optics, background, layouts)


def _detect(frames: np.ndarray, optics: Optics, background: float, layouts: list[FrameLayout],
            extra: FrameLayout | None = None) -> LayoutChoice:
    """Score layouts and choose the best.

    Score ``layouts`` (and ``extra``, kept out of the choice) on the central crop, again on a larger
    one when the best is weak; the choice and every score (``extra``'s last).
    """
    for crop in (CROP_PX, WEAK_CROP_PX):
        scorer = _Scorer(frames, optics, background, crop=crop)
        scores = sorted((LayoutScore(lay, scorer.score(lay)) for lay in layouts), key=lambda s: -s.score)
        if scores[0].score >= WEAK_SCORE or min(frames.shape[-2:]) <= crop:
            break
    margin = scores[0].score - scores[1].score if len(scores) > 1 else math.inf
    tail = (LayoutScore(extra, scorer.score(extra)),) if extra is not None else ()
    return LayoutChoice(scores[0].layout, margin, tuple(scores) + tail)


def check_layout(frames: np.ndarray, optics: Optics, layout: FrameLayout, background: float = 0.0) -> str | None:
    """Say in one sentence when a given layout fits clearly worse than another.

    One sentence when ``layout`` (given by flags or metadata) fits the frames clearly worse
    than another layout of the same frame count, naming the better one; else None.
    """
    layouts = candidate_layouts(frames.shape[0])
    if not layouts:
        return None
    choice = _detect(frames, optics, background, layouts, extra=layout)
    best, mine = choice.scores[0], choice.scores[-1].score
    if _reading(frames.shape[0], layout) == _reading(frames.shape[0], best.layout):
        return None
    if best.score - mine < CLEAR_MARGIN or choice.weak:  # a faint pattern cannot show a layout wrong
        return None
    return (f"the frames fit {describe_layout(best.layout)} clearly better than the given "
            f"{describe_layout(layout)} (layout score {best.score:.1f} vs {mine:.1f}); check --order/--angles/--phases")
