"""Issue 11 item 21: spectra carry frequency units — their own canvas, axes in cycles/µm, while
the images keep µm (napari 0.9 has one set of units per canvas)."""

from __future__ import annotations

import numpy as np
import pytest

from napari_sim_ml._qt._spectra_view import cursor_text, spectrum_geometry

RAW = "SIM raw 3x3"
PX = 0.08


def test_spectrum_geometry():
    g = spectrum_geometry((256, 128), 0.08)
    assert g["scale"] == pytest.approx((1 / 20.48, 1 / 10.24))
    assert g["translate"] == pytest.approx((-128 / 20.48, -64 / 10.24))  # zero frequency at the origin
    assert g["units"] == ("1/micrometer", "1/micrometer")
    assert cursor_text(3.0, 4.0) == "fy 3.000, fx 4.000 cycles/µm; |f| 5.000 cycles/µm, period 200.0 nm"


@pytest.mark.gui
def test_spectra_in_cycles_per_um(sim_viewer, wait, notes):
    viewer, w = sim_viewer
    w.estimate()
    wait(w)
    w.reconstruct()
    wait(w)
    assert not [m for m in notes() if "nconsistent units" in m], notes()
    # the main canvas keeps µm and holds no spectrum
    assert [str(u) for u in viewer.layers.units[-2:]] == ["micrometer", "micrometer"]
    assert not [layer.name for layer in viewer.layers if "spectrum" in layer.name or "peaks" in layer.name]
    spectra = w.spectra.model.layers
    assert {f"{RAW} spectrum raw", f"{RAW} spectrum widefield", f"{RAW} peaks", f"{RAW} OTF support",
            f"{RAW} SIM spectrum"} <= {layer.name for layer in spectra}
    assert [str(u) for u in spectra.units] == ["1 / micrometer", "1 / micrometer"]
    # a chosen peak sits at its k in cycles/µm: world (y, x) = (ky, kx) for the top order
    peaks = spectra[f"{RAW} peaks"]
    for a in w.result.params.angles:
        kx, ky = a.k_cycles_per_um
        world = np.array([peaks.data_to_world(p) for p in peaks.data])
        assert np.min(np.hypot(*(world - (ky, kx)).T)) < 0.05 / (256 * PX)  # 0.05 Fourier px
    # the raw and the SIM spectrum overlay in frequency: the SIM one reaches twice as far (2× grid)
    raw_ext = np.asarray(spectra[f"{RAW} spectrum raw"].extent.world)
    sim_ext = np.asarray(spectra[f"{RAW} SIM spectrum"].extent.world)
    assert sim_ext[1] == pytest.approx(2 * raw_ext[1], rel=0.01)
    assert raw_ext[1][-1] == pytest.approx(0.5 / PX, rel=0.01)  # the raw Nyquist, 6.25 cycles/µm
    # its canvas is docked into the main window, with a scale bar and a readout in cycles/µm
    assert w.spectra.dock is not None and w.spectra.qt_viewer.viewer is w.spectra.model
    assert w.spectra.model.scale_bar.visible
    kx, ky = w.result.params.angles[0].k_cycles_per_um
    w.spectra.model.cursor.position = (ky, kx)
    period = w.result.params.angles[0].period_um * 1e3
    assert w.spectra.readout.text().endswith(f"period {period:.1f} nm")
