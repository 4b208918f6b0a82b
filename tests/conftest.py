"""Shared test setup: torch before Qt, and widget settings kept out of the user's home."""

try:  # torch must be imported before the QApplication exists (importing it later can crash)
    import torch  # noqa: F401
except ImportError:  # the classical parts run without torch
    pass

import pytest


@pytest.fixture(autouse=True)
def _isolated_widget_settings(tmp_path, monkeypatch):
    monkeypatch.setenv("NAPARI_SIM_ML_SETTINGS", str(tmp_path / "sim_widget_settings.json"))
