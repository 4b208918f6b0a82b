"""Parameters typed into the dock's table: parse and check one edited cell (no Qt).

Editable per angle: the angle (°) and period (nm) — together k —, the modulation (m1, or
m1 / m2 for 3-beam) and the phase steps (°; the first frame's absolute phase is kept). Every
edit is checked as a parameters JSON is (types, modulation 0–1.2, k ≠ 0) and against the optics
(k within the OTF support, below Nyquist); a bad value raises SimInputError with one sentence.
"""

from __future__ import annotations

import math
import re
from dataclasses import replace
from typing import Any

from ..engine.errors import SimInputError
from ..engine.parameters import (
    AnglePattern,
    Optics,
    PatternParameters,
    check_parameters_dict,
    check_pattern_optics,
    wrap_phase,
)

EDITABLE_COLUMNS = (0, 1, 2, 3)  # angle, period, modulation, steps
TYPED = "typed"


def _numbers(text: str, what: str, count: int | None = None) -> list[float]:
    parts = [p for p in re.split(r"[\s,/;]+", text.strip()) if p]
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise SimInputError(f"the {what} must be numbers, not '{text.strip()}'") from None
    if not values or not all(math.isfinite(v) for v in values):
        raise SimInputError(f"the {what} must be finite numbers, not '{text.strip()}'")
    if count is not None and len(values) != count:
        raise SimInputError(f"the {what} needs {count} value{'s' if count > 1 else ''}, not {len(values)}")
    return values


def edited_pattern(pattern: AnglePattern, column: int, text: str) -> AnglePattern:
    """Return ``pattern`` with the table cell ``column`` set to ``text``; raises SimInputError."""
    if column == 0:
        (deg,) = _numbers(text, "angle (°)", 1)
        k, theta = pattern.k_magnitude, math.radians(deg)
        return replace(pattern, k_cycles_per_um=(k * math.cos(theta), k * math.sin(theta)))
    if column == 1:
        (nm,) = _numbers(text, "period (nm)", 1)
        if nm <= 0:
            raise SimInputError(f"the period must be positive, not {nm:g} nm")
        scale = (1e3 / nm) / pattern.k_magnitude
        kx, ky = pattern.k_cycles_per_um
        return replace(pattern, k_cycles_per_um=(kx * scale, ky * scale))
    if column == 2:
        n = pattern.n_orders
        mods = _numbers(text, "modulation (m1 / m2)" if n == 2 else "modulation (m1)", n)
        return replace(pattern, modulation=tuple(mods))
    if column == 3:
        n = len(pattern.phases_rad) - 1
        steps = _numbers(text, "phase steps (°)", n)
        phases = [pattern.phases_rad[0]]
        for s in steps:
            phases.append(phases[-1] + math.radians(s))
        return replace(pattern, phases_rad=tuple(wrap_phase(p) for p in phases))
    raise SimInputError(f"column {column} cannot be edited")


def edit_parameters(params: PatternParameters, row: int, column: int, text: str, optics: Optics) -> PatternParameters:
    """Return ``params`` with angle ``row``'s cell ``column`` typed as ``text``, checked.

    Raises SimInputError with one sentence for a value that is not a number or out of range.
    """
    angles = list(params.angles)
    try:
        angles[row] = edited_pattern(angles[row], column, text)
    except IndexError:
        raise SimInputError(f"there is no angle {row}") from None
    out = PatternParameters(tuple(angles))
    check_parameters_dict(out.to_dict(), "the typed value")
    check_pattern_optics(out, optics)
    return out


def typed_result(result: Any, params: PatternParameters, row: int) -> Any:
    """Return the EstimationResult with ``params``; angle ``row``'s diagnostics say it was typed."""
    from ..engine.estimate import AngleDiagnostics, EstimationResult

    diags = list(result.diagnostics)
    if row < len(diags):
        d = diags[row]
        diags[row] = AngleDiagnostics(quality=math.nan, grade=TYPED, peak_px=d.peak_px,
                                      modulation_measured=d.modulation_measured)
    warnings = tuple(w for w in result.warnings if not w.startswith(f"angle {row}:"))
    return EstimationResult(params, tuple(diags), warnings)
