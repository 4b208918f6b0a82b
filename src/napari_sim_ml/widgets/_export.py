"""Export of a reconstruction through the plugin's writer: SIM + widefield TIFFs and a parameters JSON."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .._writer import write_layer
from ..engine.errors import SimInputError
from ..engine.io import METADATA_KEY, write_json
from ._layers import plugin_meta


def export_paths(target: str | Path) -> list[Path]:
    """<name>.tif, <name>_widefield.tif, <name>_params.json (or <name>.ome.zarr, <name>_widefield.ome.zarr
    for a name ending in .zarr: OME-Zarr); raises when no file name is given.
    """
    target = Path(target)
    if target.suffix.lower() == ".zarr":
        stem = target.name[:-len(".ome.zarr")] if target.name.lower().endswith(".ome.zarr") else target.stem
        return [target.with_name(stem + ".ome.zarr"), target.with_name(stem + "_widefield.ome.zarr"),
                target.with_name(stem + "_params.json")]
    if str(target) in ("", ".") or target.is_dir():
        raise SimInputError("choose a file name to export to (e.g. result.tif)")
    target = target.with_suffix(".tif")
    return [target, target.with_name(target.stem + "_widefield.tif"),
            target.with_name(target.stem + "_params.json")]


LEARNED = (("PINN", "_pinn.tif"), ("PINN uncertainty σ", "_pinn_sigma.tif"), ("PINN residual", "_pinn_residual.tif"))


def learned_exports(viewer: Any, base: str, target: Path) -> list[tuple[Path, Any]]:
    """(path, layer) of the learned results of ``base`` shown in the viewer: PINN image, σ, residual."""
    from ._layers import find_layer

    target = Path(target).with_suffix(".tif")
    out = []
    for name, suffix in LEARNED:
        layer = find_layer(viewer, f"{base} {name}")
        if layer is not None:
            out.append((target.with_name(target.stem + suffix), layer))
    return out


def write_layers(items: list[tuple[Path, Any]]) -> None:
    """Write layers as they are (data, geometry, metadata) through the plugin writer."""
    for path, layer in items:
        _, state, _ = layer.as_layer_data_tuple()
        write_layer(path, np.asarray(layer.data), state, overwrite=True)


def write_export(paths: list[Path], layer: Any, images: list[np.ndarray], diagnostics: Any) -> None:
    """Write ``images`` (SIM, widefield) with ``layer``'s geometry and metadata, then the JSON.

    Raises SimInputError with a sentence on any failure (missing folder, permissions, disk).
    """
    _, state, _ = layer.as_layer_data_tuple()
    meta = plugin_meta(layer)
    try:
        for path, data, kind in zip(paths, images, ("reconstruction", "widefield"), strict=False):
            write_layer(path, data, {**state, "metadata": {METADATA_KEY: {**meta, "kind": kind}}}, overwrite=True)
        quality = [{"quality": d.quality, "grade": d.grade} for d in diagnostics]
        write_json(paths[2], {**meta["params"], "filter": meta.get("filter"), "layout": meta.get("layout"),
                              "background": meta.get("background"), "quality": quality}, overwrite=True)
    except OSError as exc:
        raise SimInputError(f"cannot write {paths[0]}: {exc.strerror or exc}") from None
