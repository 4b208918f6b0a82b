"""Run by test_gl_sequence.py in a subprocess (a segfault must not take pytest down): issue 11 item 22's
sequence on the OMX stack in a shown viewer — Reconstruct all, frame slider to 4, hide every layer but the
all-planes result, OTF = attenuated, Reconstruct — ROUNDS times. Prints 'uploads N off-main M' and 'done'."""
import faulthandler
import sys
import threading
import time

faulthandler.enable()
import napari  # noqa: E402
import numpy as np  # noqa: E402
from qtpy.QtWidgets import QApplication  # noqa: E402
from vispy.gloo import texture  # noqa: E402

uploads = []
for cls in (texture.Texture2D, texture.Texture3D):
    def wrapped(self, data, offset=None, copy=False, _orig=cls.set_data):
        a = np.asarray(data)
        uploads.append(threading.current_thread() is threading.main_thread() and a.flags.c_contiguous)
        return _orig(self, data, offset=offset, copy=copy)
    cls.set_data = wrapped

from napari_sim_ml._qt import SimWidget  # noqa: E402

path, rounds = sys.argv[1], int(sys.argv[2])
v = napari.Viewer(show=True)
v.open(path, plugin="napari-sim-ml")
w = SimWidget(v)
v.window.add_dock_widget(w, name="SIM reconstruction")
c = w.controls


def pump(n=30):
    for _ in range(n):
        QApplication.processEvents()
        time.sleep(0.01)


def wait():
    for _ in range(6000):
        pump(1)
        if not w.busy:
            break
    pump(40)


def draw():
    v.window._qt_viewer.canvas.native.update()
    pump(5)
    v.screenshot(canvas_only=True, flash=False)


c.angles.value, c.phases.value, c.n_z.value, c.order.value = 3, 5, 9, "PZA"
c.na.value, c.wavelength_nm.value, c.pixel_size_um.value = 1.42, 528.0, 0.08
for r in range(rounds):
    c.otf.value = "ideal"
    pump()
    w.reconstruct_all()
    wait()
    draw()
    labels = list(v.dims.axis_labels)
    v.dims.set_current_step(labels.index("raw frame") if "raw frame" in labels else v.dims.ndim - 3, 4)
    wait()
    draw()
    stack = v.layers[f"{c.layer.value} SIM all planes"]
    for layer in v.layers:
        layer.visible = layer is stack
    draw()
    c.otf.value = "attenuated"
    pump()
    w.reconstruct()
    wait()
    for _ in range(5):
        draw()
    print("round", r, w.status.text().splitlines()[0], flush=True)
print("uploads", len(uploads), "off-main or non-contiguous", uploads.count(False), flush=True)
v.close()
print("done", flush=True)
