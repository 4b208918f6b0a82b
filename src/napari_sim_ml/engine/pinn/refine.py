"""What real frames need beyond the ideal SIM model, as fitted parts of the noise-aware PINN.

Imported only by :mod:`napari_sim_ml.engine.pinn.noise_aware` (torch inside). Each part is fitted
together with the object, within bounds:

* :class:`PatternModel` — the illumination rendered from parameters: per-frame phases
  (± ``PHASE_BOUND_RAD`` around the estimate), per-angle modulation depths (0.05–1) and
  optionally k (± half a Fourier pixel of the field).
* :class:`Nuisance` — per-frame gain (±``GAIN_BOUND`` in log), one offset, a smooth
  per-frame illumination envelope (a coarse log-gain grid, zero mean over frames, so a
  common envelope stays in the object), a smooth unmodulated background (out-of-focus
  light), and the OTF attenuation a of fairSIM's ideal(ρ)·a^ρ when no measured OTF is given.
* :func:`imprint_notch` — the object seen by the modulated part of the patterns is notched
  (Gaussian notches at ±b·k): a smooth per-frame intensity change and object content at the
  pattern frequency moved to zero frequency by the modulation give the same frames (the
  centre of every shifted band), so the data cannot tell them apart and a model left free
  paints the pattern into the object. The object at ±b·k is still measured directly through
  the constant part of the patterns (the zero-order band), as in a Wiener filter's band-centre
  attenuation.
* :func:`periodic_border` — the result made periodic within a thin border only (no border
  cross in its spectrum; the interior untouched).
* :func:`power_law_prior` — the object's expected power spectrum A·|f|^−α fitted on the
  widefield data (where the signal is ≥ 10× the noise floor, divided by the OTF²): a Gaussian prior on
  the object spectrum that holds the fit back exactly where the data carry only noise
  (low light: no beads).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..parameters import AnglePattern, PatternParameters, wrap_phase

PHASE_BOUND_RAD = 0.5
GAIN_BOUND = 0.4  # log of the per-frame gain
ENVELOPE_BOUND = 0.7  # log of the envelope
ENVELOPE_SPACING_PX = 40  # camera pixels between envelope grid nodes
MOD_RANGE = (0.05, 1.0)
ATTENUATION_RANGE = (0.1, 1.0)
SIGNAL_OVER_FLOOR = 10.0  # the power law is fitted where the signal is clearly above the noise
ALPHA_RANGE = (1.0, 4.0)  # power-law exponents of cell images (≈1: thin lines, filaments; 2–3: edges; 4: smooth)


def _bounded(raw: torch.Tensor, bound: float) -> torch.Tensor:
    return bound * torch.tanh(raw)


class PatternModel:
    """Illumination (F, H, W) of every frame from fitted k, phases and modulation.

    params: the starting values; shape: fine canvas; fine_px: µm; origin_px: fine pixel of
    r = 0; field_um: (height, width) of the camera field, µm (sets the k bound).
    """

    def __init__(self, params: PatternParameters, shape: tuple[int, int], fine_px: float,
                 origin_px: float, field_um: tuple[float, float], device: torch.device,
                 fit_phases: bool = True, fit_modulation: bool = True, fit_k: bool = True):
        self.params, self.n_orders = params, params.n_orders
        self.y = ((torch.arange(shape[0], dtype=torch.float64) - origin_px) * fine_px).to(device)
        self.x = ((torch.arange(shape[1], dtype=torch.float64) - origin_px) * fine_px).to(device)
        self.k0 = torch.tensor([a.k_cycles_per_um for a in params.angles], dtype=torch.float64, device=device)
        self.phi0 = torch.tensor([a.phases_rad for a in params.angles], dtype=torch.float32, device=device)
        m0 = np.clip(np.array([a.modulation for a in params.angles]), MOD_RANGE[0] + 1e-3, MOD_RANGE[1] - 1e-3)
        lo, hi = MOD_RANGE
        self.m_raw = torch.tensor(np.log((m0 - lo) / (hi - m0)), dtype=torch.float32, device=device)
        self.dphi = torch.zeros_like(self.phi0)
        self.dk = torch.zeros(len(params.angles), 2, dtype=torch.float32, device=device)
        self.k_bound = torch.tensor([0.5 / field_um[1], 0.5 / field_um[0]], dtype=torch.float32, device=device)
        self.trainable = []
        for flag, p in ((fit_phases, self.dphi), (fit_modulation, self.m_raw), (fit_k, self.dk)):
            if flag:
                p.requires_grad_(True)
                self.trainable.append(p)
        self._fixed_base = None if fit_k else self._bases(torch.zeros_like(self.dk))

    def modulation(self) -> torch.Tensor:
        """Modulation depths (A, orders), within MOD_RANGE."""
        lo, hi = MOD_RANGE
        return lo + (hi - lo) * torch.sigmoid(self.m_raw)

    def phases(self) -> torch.Tensor:
        """Phases (A, P), radians, within ±PHASE_BOUND_RAD of the start."""
        return self.phi0 + _bounded(self.dphi, PHASE_BOUND_RAD)

    def k(self) -> torch.Tensor:
        """Pattern wave vectors (A, 2) (kx, ky), cycles/µm."""
        return self.k0.float() + torch.tanh(self.dk) * self.k_bound

    def _bases(self, dk: torch.Tensor) -> list[torch.Tensor]:
        out = []
        for d in range(self.k0.shape[0]):
            kx = self.k0[d, 0] + (torch.tanh(dk[d, 0]) * self.k_bound[0]).double()
            ky = self.k0[d, 1] + (torch.tanh(dk[d, 1]) * self.k_bound[1]).double()
            ph_y = torch.remainder(ky * self.y, 1.0)  # cycles, reduced in float64 before float32
            ph_x = torch.remainder(kx * self.x, 1.0)
            arg = (2 * math.pi * (ph_y[:, None] + ph_x[None, :])).float()
            out.append(arg)
        return out

    def __call__(self) -> torch.Tensor:
        """Render the illumination (F, H, W) of every frame from the current parameters."""
        args = self._fixed_base if self._fixed_base is not None else self._bases(self.dk)
        phis, mods = self.phases(), self.modulation()
        frames = []
        for d, arg in enumerate(args):
            # cos(b(arg + φ)) = cos(b·arg) cos(bφ) − sin(b·arg) sin(bφ): two maps per order and angle
            trig = [(torch.cos(b * arg), torch.sin(b * arg)) for b in range(1, self.n_orders + 1)]
            for p in range(phis.shape[1]):
                frame: Any = 1.0
                for b, (c, sn) in enumerate(trig, start=1):
                    frame = frame + mods[d, b - 1] * (c * torch.cos(b * phis[d, p]) - sn * torch.sin(b * phis[d, p]))
                frames.append(frame)
        return torch.stack(frames)

    def fitted(self) -> PatternParameters:
        """Return the fitted parameters (canonical form)."""
        k, phis, mods = (t.detach().cpu().numpy().astype(np.float64) for t in (self.k(), self.phases(),
                                                                                 self.modulation()))
        angles = [AnglePattern((float(k[d, 0]), float(k[d, 1])), tuple(wrap_phase(float(v)) for v in phis[d]),
                               tuple(float(v) for v in mods[d])).canonical() for d in range(k.shape[0])]
        return PatternParameters(tuple(angles))


class Nuisance:
    """Per-frame gain, offset, smooth envelope and background maps, OTF attenuation.

    ``frames(low)`` maps the forward model's frames (F, Y, X) (object units) to the model
    (still in units of the data scale): gain_f · env_f(r) · (low + haze(r)) + offset.
    """

    def __init__(self, n_frames: int, field: tuple[int, int], device: torch.device, gain0: float,
                 offset0: float, envelope: bool = True, haze: bool = True, attenuation: bool = False,
                 rho: tuple[torch.Tensor, torch.Tensor] | None = None, haze0: np.ndarray | None = None):
        ny, nx = field
        gh, gw = (max(2, int(round(n / ENVELOPE_SPACING_PX)) + 1) for n in (ny, nx))
        self.field = field
        self.log_gain0 = math.log(max(gain0, 1e-12))
        self.theta = torch.zeros(n_frames, 1, 1, device=device, requires_grad=True)
        # one camera-side offset for all frames: a per-frame offset would take the per-frame gains
        # (both shift a frame's mean); light-side background is the haze map, scaled by the gains
        self.beta = torch.tensor(float(offset0), device=device, requires_grad=True)
        self.trainable = [self.theta, self.beta]
        self.env = torch.zeros(n_frames, 1, gh, gw, device=device, requires_grad=envelope)
        self.haze = torch.zeros(1, 1, gh, gw, device=device)
        if haze and haze0 is not None:
            self.haze += torch.from_numpy(np.asarray(haze0, np.float32).reshape(1, 1, gh, gw)).to(device)
        self.haze.requires_grad_(haze)
        self.use_env, self.use_haze = envelope, haze
        self.trainable += [p for p, on in ((self.env, envelope), (self.haze, haze)) if on]
        lo, hi = ATTENUATION_RANGE
        self.att_raw = torch.tensor(2.5, device=device, requires_grad=attenuation)  # a ≈ 0.93 at start
        self.fast = [self.att_raw] if attenuation else []  # fitted with a higher rate
        self.rho = rho if attenuation else None

    def attenuation(self) -> torch.Tensor:
        """OTF attenuation a, within ATTENUATION_RANGE."""
        lo, hi = ATTENUATION_RANGE
        return lo + (hi - lo) * torch.sigmoid(self.att_raw)

    def transfer_scale(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        """a^ρ on the forward model's full and small transfer grids (None: not fitted)."""
        if self.rho is None:
            return None
        la = torch.log(self.attenuation())
        return torch.exp(self.rho[0] * la), torch.exp(self.rho[1] * la)

    def gains(self) -> torch.Tensor:
        """Per-frame gains (F, 1, 1), within ±GAIN_BOUND in log of the start."""
        return torch.exp(self.log_gain0 + _bounded(self.theta, GAIN_BOUND))

    def _up(self, grid: torch.Tensor) -> torch.Tensor:
        return F.interpolate(grid, size=self.field, mode="bicubic", align_corners=True)[:, 0]

    def _envelope(self) -> torch.Tensor:
        """Return the exp of the log-envelope (F, Y, X).

        The log-envelope has zero mean over frames (a common envelope is the object's) and
        over each frame's grid (a frame's mean is its gain).
        """
        e = _bounded(self.env, ENVELOPE_BOUND)
        e = e - e.mean(0, keepdim=True)
        return torch.exp(self._up(e - e.mean((-2, -1), keepdim=True)))

    @staticmethod
    def haze_start(residual: np.ndarray) -> np.ndarray:
        """Return the haze grid (GH, GW) whose smooth map fits ``residual`` (Y, X) best (least squares).

        ``residual``: the frames' mean minus the start's model of them (object units), the
        unmodulated light the start object does not explain.
        """
        ny, nx = residual.shape
        gh, gw = (max(2, int(round(n / ENVELOPE_SPACING_PX)) + 1) for n in (ny, nx))
        eye = torch.eye(gh * gw, dtype=torch.float64).reshape(gh * gw, 1, gh, gw)
        basis = F.interpolate(eye, size=(ny, nx), mode="bicubic", align_corners=True)[:, 0]
        a = basis.reshape(gh * gw, -1).numpy().T
        coef = np.linalg.lstsq(a, np.asarray(residual, np.float64).ravel(), rcond=None)[0]
        return coef.reshape(gh, gw)

    def frames(self, low: torch.Tensor) -> torch.Tensor:
        """Apply gains, envelope, haze and offset to forward-model frames ``low`` (F, Y, X)."""
        g = self.gains()
        if self.use_env:
            g = g * self._envelope()
        if self.use_haze:
            low = low + self._up(self.haze)
        return g * low + self.beta

    def summary(self) -> dict:
        """Return the fitted values as plain numbers (frame factors, offset, envelope range, attenuation)."""
        with torch.no_grad():
            out = {"frame_factors": self.gains().cpu().numpy().ravel().tolist(),
                   "offset": float(self.beta)}
            if self.use_env:
                e = self._envelope()
                out["envelope_range"] = [float(e.min()), float(e.max())]
            if self.rho is not None:
                out["otf_attenuation"] = float(self.attenuation())
        return out


def imprint_notch(params: PatternParameters, shape: tuple[int, int], fine_px: float, sigma_cpu: float,
                  device: torch.device) -> torch.Tensor:
    """Π over ±b·k of (1 − exp(−|f ∓ b·k|² / 2σ²)) on the rfft grid of ``shape``, float32."""
    fy = np.fft.fftfreq(shape[0], fine_px)[:, None]
    fx = np.fft.rfftfreq(shape[1], fine_px)[None, :]
    w = np.ones((fy.size, fx.size))
    for a in params.angles:
        for b in range(1, a.n_orders + 1):
            kx, ky = b * a.k_cycles_per_um[0], b * a.k_cycles_per_um[1]
            for s in (1, -1):  # rfft keeps fx ≥ 0; both signs cover the conjugate half
                w *= 1.0 - np.exp(-((fx - s * kx) ** 2 + (fy - s * ky) ** 2) / (2 * sigma_cpu**2))
    return torch.from_numpy(w.astype(np.float32)).to(device)


def power_law_prior(mean_frame: np.ndarray, camera_px: float, otf, shape: tuple[int, int], fine_px: float,
                    device: torch.device, noise_floor: float | None = None) -> torch.Tensor | None:
    """Return 1 / P(f), the inverse prior power of the object, or None.

    On the rfft grid of the fine canvas ``shape`` for the object in the units of
    ``mean_frame`` (Y, X: the frames' mean over frames, object units); None when the data
    show too little signal above their noise floor to fit the power law.

    P(f) = A·|f|^−α, the unnormalised-DFT power of the object on that canvas, fitted on the
    radial power of the mean frame minus its out-of-band noise floor, divided by OTF(f)²,
    where the power is at least 10× the floor and the OTF above 5 % (α clipped to 1–4; filaments: ≈ 1.1).
    noise_floor: the noise power of ``mean_frame`` per DFT coefficient (unnormalised DFT) from
    the noise model, used when it is above the out-of-band floor (correlated noise falls
    beyond the OTF support, so the out-of-band floor under-estimates it inside).
    Zero at f = 0.
    """
    from ..bands import periodic_smooth

    ny, nx = mean_frame.shape
    img = periodic_smooth(np.asarray(mean_frame, np.float64))[0].astype(np.float64)
    power = np.abs(np.fft.fft2(img - img.mean())) ** 2
    fy = np.fft.fftfreq(ny, camera_px)[:, None]
    fx = np.fft.fftfreq(nx, camera_px)[None, :]
    r = np.hypot(fy, fx)
    df = 1.0 / (max(ny, nx) * camera_px)
    kc = otf.support_cycles_per_um
    out = (r > 1.1 * kc) & (np.abs(fy) > 3.5 * df) & (np.abs(fx) > 3.5 * df)
    if out.sum() < 64:
        return None
    floor = float(np.median(power[out]))
    if noise_floor is not None:
        floor = max(floor, float(noise_floor))
    t = otf(r) * np.sinc(fy * camera_px) * np.sinc(fx * camera_px)
    bins = np.rint(r / df).astype(int)
    n = int(kc / df)
    cnt = np.bincount(bins.ravel(), minlength=n + 1)[: n + 1]
    pw = np.bincount(bins.ravel(), power.ravel(), minlength=n + 1)[: n + 1] / np.maximum(cnt, 1)
    tt = np.bincount(bins.ravel(), t.ravel(), minlength=n + 1)[: n + 1] / np.maximum(cnt, 1)
    f = np.arange(n + 1) * df
    ok = (np.arange(n + 1) >= 2) & (pw > SIGNAL_OVER_FLOOR * floor) & (tt > 0.05)
    if ok.sum() < 4:
        return None
    slope, icpt = np.polyfit(np.log(f[ok]), np.log((pw[ok] - floor) / tt[ok] ** 2), 1)
    alpha = float(np.clip(-slope, *ALPHA_RANGE))
    logc = float(np.mean(np.log((pw[ok] - floor) / tt[ok] ** 2) + alpha * np.log(f[ok])))
    # camera-grid DFT power → fine-canvas DFT power: (pixels per area)² × canvas area / field area
    fine_pixels = shape[0] * shape[1]
    scale = (camera_px / fine_px) ** 2 * fine_pixels / (ny * nx)
    gy = np.fft.fftfreq(shape[0], fine_px)[:, None]
    gx = np.fft.rfftfreq(shape[1], fine_px)[None, :]
    rf = np.maximum(np.hypot(gy, gx), df)
    inv = 1.0 / (scale * np.exp(logc) * rf ** (-alpha))
    inv[0, 0] = 0.0
    inv[:, 1:-1] *= 2.0  # the rfft's columns stand for two frequencies each
    return torch.from_numpy(inv.astype(np.float32)).to(device)


def periodic_border(image: np.ndarray, width: int) -> np.ndarray:
    """Remove the jumps between opposite borders of ``image`` (Y, X) within ``width`` px.

    Subtracts the smooth part of the periodic-plus-smooth decomposition, faded out over
    ``width`` px from the borders: no cross on the spectral axes, the interior is unchanged.
    """
    from ..bands import periodic_smooth

    img = np.asarray(image, dtype=np.float32)
    smooth = periodic_smooth(img)[1]
    width = max(2, min(int(width), min(img.shape) // 4))

    def ramp(n: int) -> np.ndarray:
        d = np.minimum(np.arange(n), np.arange(n)[::-1]).astype(np.float64)
        t = np.clip((d - 1) / (width - 1), 0.0, 1.0)
        return 0.5 * (1 + np.cos(np.pi * t))  # 1 at the border, 0 from ``width`` px inwards

    ry, rx = ramp(img.shape[0])[:, None], ramp(img.shape[1])[None, :]
    weight = np.maximum(ry, rx).astype(np.float32)
    return (img - smooth * weight).astype(np.float32)


__all__ = ["PatternModel", "periodic_border", "Nuisance", "imprint_notch", "power_law_prior", "PHASE_BOUND_RAD",
           "GAIN_BOUND"]
