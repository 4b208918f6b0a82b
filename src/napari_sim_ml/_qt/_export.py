"""Export of a reconstruction through the plugin's writer: SIM + widefield TIFFs and a parameters JSON."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .._writer import write_layer
from ..engine.errors import SimInputError
from ..engine.io import METADATA_KEY, write_json
from ..engine.metadata import read_metadata
from ._layers import plugin_meta


def export_paths(target: str | Path) -> list[Path]:
    """Name the export's files: <name>.tif, <name>_widefield.tif, <name>_params.json.

    A name ending in .zarr gives <name>.ome.zarr and <name>_widefield.ome.zarr (OME-Zarr);
    raises when no file name is given.
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
            record = read_metadata(meta).replace(kind=kind).to_dict()  # the schema (engine.metadata)
            write_layer(path, data, {**state, "metadata": {METADATA_KEY: record}}, overwrite=True)
        quality = [{"quality": d.quality, "grade": d.grade} for d in diagnostics]
        write_json(paths[2], {**meta["params"], "filter": meta.get("filter"), "layout": meta.get("layout"),
                              "background": meta.get("background"), "quality": quality}, overwrite=True)
    except OSError as exc:
        raise SimInputError(f"cannot write {paths[0]}: {exc.strerror or exc}") from None


def export_source(viewer: Any, base: str, session: Any) -> tuple[Any, list[np.ndarray]] | None:
    """(layer, [image, widefield]) of what is on screen, or None before a reconstruction.

    The all-planes stack when it is shown above (or instead of) the current-plane result,
    else the current plane as the sliders left it.
    """
    from ._layers import find_layer

    sr = find_layer(viewer, f"{base} SIM")
    stack = find_layer(viewer, f"{base} SIM all planes")
    single = (sr, [np.asarray(sr.data), session.prepared.widefield]) if sr is not None and \
        session.prepared is not None else None
    whole = (stack, [session.all_planes.images, session.all_planes.widefields]) if stack is not None and \
        session.all_planes is not None else None
    if whole is None or single is None:
        return whole or single
    layers = list(viewer.layers)
    if stack.visible and (not sr.visible or layers.index(stack) > layers.index(sr)):
        return whole
    return single


def export_shown(dock: Any, path: str | Path | None = None) -> list[str] | None:
    """Write what ``dock`` shows (see :meth:`SimWidget.export`); the paths written, or None."""
    from ._notify import notify

    session = dock.session
    source = export_source(dock.viewer, session.base, session)
    if source is None or (session.estimate is None and session.all_planes is None and session.prepared is None):
        notify("error", "nothing to export yet: reconstruct first", dock.status)
        return None
    try:
        paths = export_paths(path if path else str(dock.controls.export_path.value))
    except SimInputError as exc:
        notify("error", str(exc), dock.status)
        return None
    learned = learned_exports(dock.viewer, session.base, paths[0])
    existing = [p for p in paths + [p for p, _ in learned] if p.exists()]
    if existing and not dock._confirm_overwrite(existing):
        notify("info", "export cancelled; no file was changed")
        return None
    layer, images = source
    estimate = session.estimate if session.estimate is not None else getattr(session.all_planes, "estimate", None)
    try:  # no estimate: loaded parameters, no diagnostics
        write_export(paths, layer, images, estimate.result.diagnostics if estimate is not None else [])
        write_layers(learned)
    except SimInputError as exc:
        notify("error", f"export failed: {exc}", dock.status)
        return None
    written = paths + [p for p, _ in learned]
    notify("info", f"exported {', '.join(p.name for p in written)} to {paths[0].parent}")
    return [str(p) for p in written]
