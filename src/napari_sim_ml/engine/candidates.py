"""Candidate pattern peaks, judged physically, and the choice of one per angle.

The band cross-correlation of a periodic specimen (a grating, line pairs) has side peaks at
k ± the specimen's own harmonics, often higher than the one at k; a camera's fixed-pattern
stripe that is present in some frames leaks into the modulated band and correlates with
band 0's mean. So several peaks per angle are kept and judged by what only the
illumination does (k in Fourier px of the raw grid, top order):

* **It moves with the phase steps.** The illumination's +k component rotates with the
  phase (φ_n) and lands in band +b only; a fixed structure has one phase in every frame,
  whatever its per-frame strength g_n, so it lands in bands +b and −b alike (B_±b = S·Σ g_n e^{∓iφ_n}/P,
  equal magnitudes), and so do the peaks it makes in their correlations C_±b with band 0:
  ``rotation = C_+b(s)² / (C_+b(s)² + C_−b(s)²)`` is ≈ 1 for the pattern, ≈ 0.5 for it. For real
  frames C_−b(s) = C_+b(−s), so it costs nothing.
* **The object constraint.** With the right shift s the top band obeys
  ``H(f − s) B_b(f) = c H(f) B_0(f − s)`` over the overlap of the two supports. ``coherence``
  is the squared correlation coefficient of the two sides there (noise power removed), in [0, 1].
* **Cross-angle consistency** (a prior, which the user can switch off): the angles of one
  acquisition share |k| (within CONSISTENCY_K, relative) and lie about 180°/n apart
  (within CONSISTENCY_DEG). The combination of one candidate per angle maximising
  Σ log coherence − ½ Σ (deviation / tolerance)² is chosen.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

MAX_CANDIDATES = 12  # per angle, highest correlation first
CANDIDATE_HEIGHT = 0.15  # judged only when its correlation is ≥ this × the highest one's
MIN_ROTATION = 0.75  # below: a structure that does not move with the phase steps
CONSISTENCY_K = 0.01  # relative |k| tolerance of the prior
CONSISTENCY_DEG = 2.0  # angle tolerance of the prior, degrees
INCONSISTENT_K = 0.02  # reported as inconsistent beyond these
INCONSISTENT_DEG = 5.0
MIN_MARGIN = 2.0  # best over runner-up (likelihood ratio) below which a grade is at most 'low'
MAX_MARGIN = 1e6  # margins are reported up to this
COHERENCE_FLOOR = 1e-3


@dataclass(frozen=True)
class Candidate:
    """One correlation peak of one angle.

    k_px: (ky, kx) of the top order, Fourier px (FFT frequency index, may be negative).
    height: correlation peak / median correlation in the search annulus.
    rotation: C_+b² / (C_+b² + C_−b²) at the peak (≈ 0.5 for a fixed structure).
    coherence: object-constraint agreement in [0, 1]; NaN when not judged.
    """

    k_px: tuple[float, float]
    height: float
    rotation: float = math.nan
    coherence: float = math.nan

    @property
    def moves_with_phase(self) -> bool:
        """Whether the peak moves with the phase steps (a pattern, not fixed structure)."""
        return not self.rotation < MIN_ROTATION

    @property
    def log_score(self) -> float:
        """Log of the coherence (floored at COHERENCE_FLOOR; the floor when not judged)."""
        c = self.coherence if math.isfinite(self.coherence) else COHERENCE_FLOOR
        return math.log(max(c, COHERENCE_FLOOR))


@dataclass(frozen=True)
class Choice:
    """The candidate chosen per angle, with margins and notes.

    Chosen candidate index per angle, its margin over the runner-up (a likelihood ratio ≥ 1)
    and a note per angle ('' when consistent) naming what is wrong.
    """

    index: tuple[int, ...]
    margin: tuple[float, ...]
    notes: tuple[str, ...]


def local_maxima(masked: np.ndarray, n: int, radius: int = 3, pool: int = 2048) -> list[tuple[int, int]]:
    """Find the highest separated local maxima of a masked map.

    (row, col) of up to ``n`` peaks of ``masked`` > 0, highest first, each more than ``radius`` px
    (periodic) from every higher one: greedy suppression among the ``pool`` highest values.
    """
    flat = masked.ravel()
    pool = min(pool, flat.size)
    top = np.argpartition(flat, flat.size - pool)[flat.size - pool:]
    top = top[np.argsort(flat[top])[::-1]]
    ny, nx = masked.shape
    kept: list[tuple[int, int]] = []
    for idx in top:
        if flat[idx] <= 0 or len(kept) == n:
            break
        r, c = divmod(int(idx), nx)
        if all(min(abs(r - kr), ny - abs(r - kr)) > radius or min(abs(c - kc), nx - abs(c - kc)) > radius
               for kr, kc in kept):
            kept.append((r, c))
    return kept


def rotation(plus: float, minus: float) -> float:
    """Measure how much a correlation peak moves with the phase steps.

    plus² / (plus² + minus²) of the correlations of bands +b and −b with band 0 at one shift:
    ≈ 1 for a peak that moves with the phase steps, ≈ 0.5 for a fixed one.
    """
    p, m = abs(plus) ** 2, abs(minus) ** 2
    return p / (p + m) if p + m > 0 else 0.5


def coherence(u: np.ndarray, v: np.ndarray, noise_u: float, noise_v: float) -> float:
    """|⟨u, v⟩|² / ((‖u‖² − noise_u)(‖v‖² − noise_v)), clipped to [0, 1] (u, v: 1-D, weighted)."""
    uu = float(np.vdot(u, u).real) - noise_u
    vv = float(np.vdot(v, v).real) - noise_v
    if uu <= 0 or vv <= 0:
        return 0.0
    return float(np.clip(abs(np.vdot(v, u)) ** 2 / (uu * vv), 0.0, 1.0))


def _polar(k_px: tuple[float, float], shape: tuple[int, int]) -> tuple[float, float]:
    """|k| in cycles per raw pixel and its direction in degrees [0, 180) (x right, y down)."""
    ky, kx = k_px[0] / shape[0], k_px[1] / shape[1]
    return math.hypot(ky, kx), math.degrees(math.atan2(ky, kx)) % 180.0


def deviations(ks: list[tuple[float, float]], shape: tuple[int, int]) -> tuple[list[float], list[float]]:
    """Measure each angle's departure from a consistent set of angles.

    Per angle: relative |k| deviation from the median, and angle deviation (°) from the
    nearest equally spaced set (180°/n apart); two angles on one slot get 90° (no such set).
    """
    polar = [_polar(k, shape) for k in ks]
    n = len(ks)
    mags = sorted(m for m, _ in polar)
    median = mags[n // 2] if n % 2 else 0.5 * (mags[n // 2 - 1] + mags[n // 2])
    dk = [m / max(median, 1e-12) - 1.0 for m, _ in polar]
    if n < 2:
        return dk, [0.0] * n
    spacing = 180.0 / n
    z = sum(complex(math.cos(2 * math.pi * a / spacing), math.sin(2 * math.pi * a / spacing)) for _, a in polar)
    mean = math.degrees(math.atan2(z.imag, z.real)) * spacing / 360.0

    def fit(theta0: float) -> list[float]:
        slots = [round((a - theta0) / spacing) for _, a in polar]
        taken = [s % n for s in slots]
        return [90.0 if taken.count(t) > 1 else a - theta0 - s * spacing
                for t, s, (_, a) in zip(taken, slots, polar, strict=False)]

    # the set's offset: the circular mean, or one angle's own when that leaves more angles in place
    # (so one stray angle does not drag the others off)
    fits = [fit(mean)] + [fit(a) for _, a in polar]
    return dk, max(fits, key=lambda dev: sum(abs(d) <= INCONSISTENT_DEG for d in dev))


def _prior(ks: list[tuple[float, float]], shape: tuple[int, int]) -> float:
    dk, dev = deviations(ks, shape)
    return -0.5 * sum((a / CONSISTENCY_K) ** 2 + (b / CONSISTENCY_DEG) ** 2 for a, b in zip(dk, dev, strict=False))


def choose(candidates: list[list[Candidate]], shape: tuple[int, int], use_prior: bool = True) -> Choice:
    """Choose one candidate peak per angle.

    One candidate per angle: the best joint score (log coherence, + the consistency prior
    when ``use_prior``), among candidates that move with the phase steps (all, if none does).
    """
    usable = []
    for cands in candidates:
        moving = [i for i, c in enumerate(cands) if c.moves_with_phase]
        usable.append(moving or list(range(len(cands))))
    def score(combo: tuple[int, ...]) -> float:
        total = sum(candidates[d][i].log_score for d, i in enumerate(combo))
        if use_prior and len(combo) > 1:
            total += _prior([candidates[d][i].k_px for d, i in enumerate(combo)], shape)
        return total

    scores = {c: score(c) for c in _hypotheses(candidates, usable, shape, use_prior)}
    best = max(scores, key=scores.__getitem__)
    for d in range(len(candidates)):  # every single-angle change of the best, for the margins
        for i in usable[d]:
            combo = best[:d] + (i,) + best[d + 1:]
            if combo not in scores:
                scores[combo] = score(combo)
    best = max(scores, key=scores.__getitem__)
    best_score = scores[best]
    margins = []
    for d, cands in enumerate(candidates):
        rival = max((s for c, s in scores.items() if c[d] != best[d]), default=None)
        if rival is not None:
            margins.append(min(math.exp(min(best_score - rival, 50.0)), MAX_MARGIN))
        else:  # no judged rival: the runner-up is the highest correlation peak not judged
            others = [cands[i].height for i in usable[d] if i != best[d]]
            runner = max(others) if others else 0.0
            margins.append(min(cands[best[d]].height / runner, MAX_MARGIN) if runner > 0 else MAX_MARGIN)
    ks = [candidates[d][i].k_px for d, i in enumerate(best)]
    notes = consistency_notes(ks, shape)
    for d, i in enumerate(best):
        if not candidates[d][i].moves_with_phase:
            notes[d] = (notes[d] + "; " if notes[d] else "") + (
                f"its peak does not move with the phase steps (rotation {candidates[d][i].rotation:.2f})")
    return Choice(tuple(best), tuple(margins), tuple(notes))


def _hypotheses(candidates: list[list[Candidate]], usable: list[list[int]], shape: tuple[int, int],
                use_prior: bool) -> list[tuple[int, ...]]:
    """List the combinations of candidates worth scoring.

    Combinations worth scoring: each angle's best alone, and, with the prior, for every usable
    candidate taken as the truth (its |k| and direction fix where the others must lie), the
    others' best under the prior given it. O(n² C²) instead of C^n.
    """
    best_alone = tuple(max(u, key=lambda i: candidates[d][i].log_score) for d, u in enumerate(usable))
    combos = [best_alone]
    n = len(candidates)
    if not use_prior or n < 2:
        return combos
    polar = [[_polar(c.k_px, shape) for c in cands] for cands in candidates]
    spacing = 180.0 / n
    for d, u in enumerate(usable):
        for i in u:
            mag, angle = polar[d][i]
            combo = []
            for e, ue in enumerate(usable):
                if e == d:
                    combo.append(i)
                    continue

                def given(j: int, e: int = e, mag: float = mag, angle: float = angle) -> float:
                    m, a = polar[e][j]
                    off = (a - angle) % spacing
                    off = min(off, spacing - off)
                    return candidates[e][j].log_score - 0.5 * (((m / mag - 1) / CONSISTENCY_K) ** 2
                                                               + (off / CONSISTENCY_DEG) ** 2)
                combo.append(max(ue, key=given))
            combos.append(tuple(combo))
    return list(dict.fromkeys(combos))


def consistency_notes(ks: list[tuple[float, float]], shape: tuple[int, int]) -> list[str]:
    """Per angle, why it disagrees with the others ('' when it does not)."""
    if len(ks) < 2:
        return [""] * len(ks)
    dk, dev = deviations(ks, shape)
    notes = []
    for d in range(len(ks)):
        why = []
        if abs(dk[d]) > INCONSISTENT_K:
            why.append(f"its |k| is {100 * dk[d]:+.1f} % from the other angles'")
        if abs(dev[d]) >= 90.0:
            why.append("it shares its direction with another angle")
        elif abs(dev[d]) > INCONSISTENT_DEG:
            why.append(f"it is {dev[d]:+.1f}° off equal spacing ({180 / len(ks):.0f}° apart)")
        notes.append(" and ".join(why))
    return notes
