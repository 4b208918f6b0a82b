"""napari-sim-ml: classical and physics-informed learned SIM reconstruction for napari."""

__version__ = "0.1.0"
