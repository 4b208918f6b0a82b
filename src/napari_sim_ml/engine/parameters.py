"""Plain dataclasses for optics and illumination-pattern parameters.

Conventions (the engine's contract, also documented in README.md):

* Raw pixel (row, col) sits at x = col * pixel_size_um, y = row * pixel_size_um;
  the origin is the centre of pixel (0, 0); x points right, y points down.
* Illumination of angle d, frame n:
  ``1 + m1 cos(2π (kx x + ky y) + φ_n) [+ m2 cos(2 (2π (kx x + ky y) + φ_n))]``
  with k = (kx, ky) in cycles/µm (first order) and φ_n in radians.
* k and -k with all phases negated describe the same pattern; the engine reports
  the canonical form with kx > 0 (or kx == 0 and ky > 0).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .errors import SimInputError


@dataclass(frozen=True)
class Optics:
    """Detection optics and sampling.

    na: numerical aperture of the detection objective.
    wavelength_nm: emission wavelength in nm.
    pixel_size_um: raw camera pixel size in the sample plane, µm.
    immersion_index: refractive index of the immersion medium (informative).
    """

    na: float = 1.4
    wavelength_nm: float = 525.0
    pixel_size_um: float = 0.08
    immersion_index: float | None = None

    def __post_init__(self) -> None:
        if not (0.05 <= self.na <= 2.0):
            raise SimInputError(f"numerical aperture {self.na} is outside 0.05-2.0")
        if not (150.0 <= self.wavelength_nm <= 2000.0):
            raise SimInputError(
                f"emission wavelength {self.wavelength_nm} nm is outside 150-2000 nm"
            )
        if not (0.001 <= self.pixel_size_um <= 10.0):
            raise SimInputError(f"pixel size {self.pixel_size_um} µm is outside 0.001-10 µm")
        if self.immersion_index is not None:
            if not (1.0 <= self.immersion_index <= 2.0):
                raise SimInputError(f"immersion refractive index {self.immersion_index} is outside 1.0-2.0")
            if self.na > self.immersion_index + 1e-9:
                raise SimInputError(f"numerical aperture {self.na} is above the immersion medium's refractive "
                                    f"index {self.immersion_index}; no objective can have it")

    @property
    def cutoff_cycles_per_um(self) -> float:
        """Incoherent OTF cutoff 2 NA / λ in cycles/µm."""
        return 2.0 * self.na / (self.wavelength_nm * 1e-3)


@dataclass(frozen=True)
class AnglePattern:
    """Illumination parameters of one pattern orientation.

    k_cycles_per_um: first-order spatial frequency (kx, ky), cycles/µm.
    phases_rad: phase φ_n of every frame of this angle, radians.
    modulation: modulation depth per order, (m1,) for 2-beam or (m1, m2) for 3-beam.
    """

    k_cycles_per_um: tuple[float, float]
    phases_rad: tuple[float, ...]
    modulation: tuple[float, ...] = (1.0,)

    def __post_init__(self) -> None:
        object.__setattr__(self, "k_cycles_per_um", tuple(float(v) for v in self.k_cycles_per_um))
        object.__setattr__(self, "phases_rad", tuple(float(v) for v in self.phases_rad))
        object.__setattr__(self, "modulation", tuple(float(v) for v in self.modulation))
        if len(self.k_cycles_per_um) != 2:
            raise SimInputError("k_cycles_per_um must hold two numbers (kx, ky)")
        if len(self.modulation) not in (1, 2):
            raise SimInputError("modulation must hold one (2-beam) or two (3-beam) values")
        if len(self.phases_rad) < 2 * len(self.modulation) + 1:
            raise SimInputError(
                f"{len(self.phases_rad)} phases cannot separate "
                f"{2 * len(self.modulation) + 1} orders"
            )
        if not all(math.isfinite(v) for v in (*self.k_cycles_per_um, *self.phases_rad, *self.modulation)):
            raise SimInputError("pattern parameters must be finite numbers")

    @property
    def n_orders(self) -> int:
        """Highest harmonic order (1 for 2-beam, 2 for 3-beam)."""
        return len(self.modulation)

    @property
    def k_magnitude(self) -> float:
        """|k| of the first order, cycles/µm."""
        return math.hypot(*self.k_cycles_per_um)

    @property
    def angle_deg(self) -> float:
        """Direction of k in degrees, in [0, 180), x right, y down."""
        return math.degrees(math.atan2(self.k_cycles_per_um[1], self.k_cycles_per_um[0])) % 180.0

    @property
    def period_um(self) -> float:
        """Period of the first-order stripes, µm."""
        return 1.0 / self.k_magnitude

    def canonical(self) -> AnglePattern:
        """Return the same pattern with kx > 0 (or kx == 0, ky > 0)."""
        kx, ky = self.k_cycles_per_um
        if kx < 0 or (kx == 0 and ky < 0):
            return replace(self, k_cycles_per_um=(-kx, -ky),
                           phases_rad=tuple(wrap_phase(-p) for p in self.phases_rad))
        return self


@dataclass(frozen=True)
class PatternParameters:
    """Pattern parameters of all angles of one acquisition."""

    angles: tuple[AnglePattern, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "angles", tuple(self.angles))
        if not self.angles:
            raise SimInputError("pattern parameters need at least one angle")
        n_phases = {len(a.phases_rad) for a in self.angles}
        orders = {a.n_orders for a in self.angles}
        if len(n_phases) != 1 or len(orders) != 1:
            raise SimInputError("every angle must have the same number of phases and orders")

    @property
    def n_angles(self) -> int:
        """Number of pattern angles."""
        return len(self.angles)

    @property
    def n_phases(self) -> int:
        """Number of phases (frames) per angle."""
        return len(self.angles[0].phases_rad)

    @property
    def n_orders(self) -> int:
        """Highest harmonic order (1 for 2-beam, 2 for 3-beam)."""
        return self.angles[0].n_orders

    def to_dict(self, optics: Optics | None = None) -> dict[str, Any]:
        """Return the parameters as the README's parameters-JSON schema (with the optics when given)."""
        out: dict[str, Any] = {}
        if optics is not None:
            out.update(na=optics.na, wavelength_nm=optics.wavelength_nm,
                       pixel_size_um=optics.pixel_size_um)
            if optics.immersion_index is not None:
                out["immersion_index"] = optics.immersion_index
        out["angles"] = [
            {
                "k_cycles_per_um": list(a.k_cycles_per_um),
                "angle_deg": a.angle_deg,
                "period_um": a.period_um,
                "phases_rad": list(a.phases_rad),
                "modulation": list(a.modulation),
            }
            for a in self.angles
        ]
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PatternParameters:
        """Read parameters from the README's parameters-JSON schema (``check_parameters_dict`` checks it)."""
        try:
            angles = tuple(
                AnglePattern(
                    k_cycles_per_um=tuple(a["k_cycles_per_um"]),
                    phases_rad=tuple(a["phases_rad"]),
                    modulation=tuple(a.get("modulation", [1.0])),
                )
                for a in data["angles"]
            )
        except (KeyError, TypeError) as exc:
            raise SimInputError(f"parameters JSON lacks a required field: {exc}") from None
        return cls(angles=angles)


def optics_from_dict(data: dict[str, Any], default: Optics | None = None) -> Optics | None:
    """Optics from the keys na, wavelength_nm, pixel_size_um of a parameters JSON."""
    base = default or Optics()
    keys = ("na", "wavelength_nm", "pixel_size_um")
    if not any(k in data for k in keys):
        return default
    return replace(base, **{k: float(data[k]) for k in keys if k in data},
                   immersion_index=data.get("immersion_index", base.immersion_index))


def wrap_phase(phi: float) -> float:
    """Wrap an angle to (-π, π]."""
    out = math.remainder(phi, 2.0 * math.pi)
    return math.pi if out == -math.pi else out


def load_parameters_json(path: str | Path) -> tuple[PatternParameters, dict[str, Any]]:
    """Read a parameters JSON file; returns the parameters and the raw dict."""
    path = Path(path)
    if not path.is_file():
        raise SimInputError(f"parameters file not found: {path}")
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise SimInputError(f"cannot read parameters JSON {path}: {exc}") from None
    if not isinstance(data, dict):
        raise SimInputError(f"parameters JSON {path} must hold an object")
    check_parameters_dict(data, path.name)
    return PatternParameters.from_dict(data), data


MODULATION_MAX = 1.2  # a measured modulation a little above 1 is noise; far above it is a wrong value


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def check_parameters_dict(data: dict[str, Any], name: str = "the parameters JSON") -> None:
    """Types and physical ranges of a parameters JSON (README schema); one SimInputError.

    Optics values must be numbers; every angle needs k (two numbers, not both 0), phases
    (numbers) and modulation (numbers in [0, 1.2]).
    """
    for key in ("na", "wavelength_nm", "pixel_size_um", "immersion_index"):
        if key in data and data[key] is not None and not _is_number(data[key]):
            raise SimInputError(f"{name}: {key} must be a number, not {data[key]!r}")
    angles = data.get("angles")
    if not isinstance(angles, list) or not angles:
        raise SimInputError(f"{name}: 'angles' must be a non-empty list")
    for i, a in enumerate(angles):
        if not isinstance(a, dict):
            raise SimInputError(f"{name}: angle {i} must be an object")
        for key in ("k_cycles_per_um", "phases_rad"):
            if key not in a:
                raise SimInputError(f"{name}: angle {i} lacks a required field: {key}")
        k = a.get("k_cycles_per_um")
        if not isinstance(k, list) or len(k) != 2 or not all(_is_number(v) for v in k):
            raise SimInputError(f"{name}: angle {i}: k_cycles_per_um must be two numbers (kx, ky) in cycles/µm")
        if math.hypot(*k) == 0.0:
            raise SimInputError(f"{name}: angle {i}: k is 0; a pattern needs a non-zero frequency")
        phases = a.get("phases_rad")
        if not isinstance(phases, list) or not all(_is_number(v) for v in phases):
            raise SimInputError(f"{name}: angle {i}: phases_rad must be a list of numbers (radians)")
        mod = a.get("modulation", [1.0])
        if not isinstance(mod, list) or not all(_is_number(v) for v in mod):
            raise SimInputError(f"{name}: angle {i}: modulation must be a list of numbers")
        bad = [m for m in mod if not 0.0 <= m <= MODULATION_MAX]
        if bad:
            raise SimInputError(f"{name}: angle {i}: modulation {bad[0]} is outside 0-{MODULATION_MAX}")


def check_pattern_optics(params: PatternParameters, optics: Optics, slack: float = 1.25) -> None:
    """Refuse pattern frequencies the optics cannot have made or cannot see.

    The highest order (n_orders · |k|) must lie within ``slack`` × the detection OTF
    cutoff 2 NA / λ (an illumination pattern is formed through the same objective; the
    slack allows a shorter excitation wavelength), and the period must span at least
    two camera pixels' worth of frequency below Nyquist.
    """
    cutoff = optics.cutoff_cycles_per_um
    nyquist = 0.5 / optics.pixel_size_um
    for i, a in enumerate(params.angles):
        top = a.n_orders * a.k_magnitude
        if top > slack * cutoff:
            raise SimInputError(
                f"angle {i}: pattern frequency {top:.2f} cycles/µm is beyond the OTF support "
                f"({cutoff:.2f} cycles/µm for NA {optics.na} at {optics.wavelength_nm:g} nm); "
                "check k, the optics and the pixel size")
        if a.k_magnitude >= nyquist:
            raise SimInputError(
                f"angle {i}: pattern frequency {a.k_magnitude:.2f} cycles/µm is above the camera's Nyquist "
                f"frequency {nyquist:.2f} cycles/µm (pixel {optics.pixel_size_um} µm)")


def equidistant_phases(n_phases: int, offset: float = 0.0) -> tuple[float, ...]:
    """Phases offset + 2π n / n_phases, n = 0 .. n_phases-1."""
    return tuple(wrap_phase(offset + 2.0 * math.pi * n / n_phases) for n in range(n_phases))


@dataclass(frozen=True)
class FilterSettings:
    """Settings of the Wiener filter stage (the live sliders).

    wiener: Wiener parameter w; w² is added to the OTF-weighted denominator, which
        is normalised to 1 at zero frequency (so w is per angle, like fairSIM's).
    apo_cutoff: apodization reaches zero at apo_cutoff × the SIM support boundary
        (direction dependent); 1.0 = exactly the boundary.
    apo_bend: exponent of the apodization profile (< 1 flatter, > 1 steeper).
    attenuation: band-centre attenuation strength s in [0, 1] (0 = off).
    attenuation_fwhm: FWHM of the attenuation notch, cycles/µm.
    """

    wiener: float = 0.05
    apo_cutoff: float = 1.0
    apo_bend: float = 0.9
    attenuation: float = 0.95
    attenuation_fwhm: float = 1.2

    def __post_init__(self) -> None:
        checks = [
            (0.0 < self.wiener <= 10.0, "Wiener parameter must be in (0, 10]"),
            (0.1 <= self.apo_cutoff <= 3.0, "apodization cutoff must be in [0.1, 3]"),
            (0.01 <= self.apo_bend <= 5.0, "apodization bend must be in [0.01, 5]"),
            (0.0 <= self.attenuation <= 1.0, "attenuation strength must be in [0, 1]"),
            (0.01 <= self.attenuation_fwhm <= 20.0, "attenuation FWHM must be in [0.01, 20] cycles/µm"),
        ]
        for ok, msg in checks:
            if not ok:
                raise SimInputError(msg)


__all__ = [
    "Optics", "AnglePattern", "PatternParameters", "FilterSettings",
    "optics_from_dict", "wrap_phase", "load_parameters_json", "equidistant_phases", "check_parameters_dict",
    "check_pattern_optics",
]
