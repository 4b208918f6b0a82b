"""The file contract: one typed, versioned schema for the metadata this plugin writes.

Every image this plugin writes (raw stacks from ``simulate`` and the sample data,
reconstructions, widefield / σ / residual maps, batch OME-TIFF and OME-Zarr outputs,
layers saved from napari) carries one JSON object under the key ``napari_sim_ml``:
in an ImageJ TIFF's ``Info``, in an OME-TIFF's ``Description``, in OME-Zarr attributes,
and in a napari layer's ``metadata``. :class:`SimMetadata` is that object, typed.

Schema versions (``schema`` key):

* 0: files written before the key existed. The camera offset of raw files was named
  ``camera_offset``; ``denoiser`` was a string (batch) or an object (reconstruct); the
  PINN settings of a batch and the PINN results of ``reconstruct`` shared ``pinn``.
* 1 (:data:`SCHEMA_VERSION`): ``background`` is the camera offset (counts) for every
  kind; raw files also carry ``camera_offset`` (the same number) so that versions
  before schema 1 still read their offset; ``denoiser`` is always an object.

Reading (:meth:`SimMetadata.from_dict`) is explicit about what it does not know:
missing keys are None; keys outside the schema are kept in ``extra`` (and written back
unchanged); a known key with a value of the wrong type is not read (its field is None),
named in ``problems`` and kept in ``extra`` as it was (``strict=True`` raises instead); a
schema newer than this version is read as far as its keys are known and named in
``problems``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any

from .errors import SimInputError

METADATA_KEY = "napari_sim_ml"
SCHEMA_VERSION = 1
LEGACY_OFFSET_KEY = "camera_offset"  # schema 0 name of ``background`` in raw files

# ---------------------------------------------------------------- file suffixes and units (one source)
TIFF_SUFFIXES = (".tif", ".tiff")
MRC_SUFFIXES = (".mrc", ".dv", ".st", ".map")
RAW_SUFFIXES = TIFF_SUFFIXES + MRC_SUFFIXES  # files a raw stack is read from
ZARR_SUFFIXES = (".ome.zarr", ".zarr")
OME_TIFF_SUFFIXES = (".ome.tiff", ".ome.tif")

# µm per unit of the length units found in TIFF/OME/napari metadata (lower case, µ/μ spelt u)
UNIT_TO_UM = {"um": 1.0, "micron": 1.0, "microns": 1.0, "micrometer": 1.0, "micrometre": 1.0,
              "nm": 1e-3, "nanometer": 1e-3, "nanometre": 1e-3, "mm": 1e3, "millimeter": 1e3,
              "a": 1e-4, "angstrom": 1e-4, "m": 1e6}

# kinds of image (``kind``); readers may meet others (kept as given)
KINDS = ("raw", "truth", "reconstruction", "widefield", "uncertainty", "residual", "spectrum", "denoised")


def positive_or_none(value: Any) -> float | None:
    """Return ``value`` as a finite positive float, None when it is not one."""
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) and out > 0 else None


def unit_to_um(unit: Any) -> float | None:
    """µm per ``unit`` (a string, or a napari/pint unit), None when it is not a length unit."""
    if unit is None:
        return None
    text = str(unit).strip().lower().replace("µ", "u").replace("μ", "u")
    return UNIT_TO_UM.get(text)


def length_to_um(value: float | None, unit: str | None) -> float | None:
    """``value`` in ``unit`` (default µm) as µm; None when either is unknown."""
    if value is None:
        return None
    scale = unit_to_um(unit or "um")
    return value * scale if scale else None


# ---------------------------------------------------------------- typed parts
@dataclass(frozen=True)
class ImageOptics:
    """Optics of one image; None = not stated.

    NA, emission wavelength (nm), this image's pixel size (µm; half the camera pixel for an
    image on the 2× grid) and the immersion index.
    """

    na: float | None = None
    wavelength_nm: float | None = None
    pixel_size_um: float | None = None
    immersion_index: float | None = None

    @classmethod
    def from_optics(cls, optics: Any, pixel_size_um: float | None = None) -> ImageOptics:
        """From an :class:`~napari_sim_ml.engine.parameters.Optics`, optionally another pixel size."""
        return cls(optics.na, optics.wavelength_nm,
                   optics.pixel_size_um if pixel_size_um is None else pixel_size_um, optics.immersion_index)

    def to_dict(self) -> dict[str, Any]:
        """All four keys (None where not stated), as ``dataclasses.asdict(Optics)`` writes them."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


# (key, accepted types, what it holds) — the schema's top-level keys besides optics/extra
_NUM = (int, float)
SCHEMA: dict[str, tuple[tuple[type, ...], str]] = {
    "kind": ((str,), "what the image is: raw, truth, reconstruction, widefield, uncertainty, residual, ..."),
    "method": ((str,), "wiener or pinn (reconstructions)"),
    "source": ((str,), "path of the raw file it was made from"),
    "source_layer": ((str,), "napari layer it was made from (dock)"),
    "name": ((str,), "output file name (batch)"),
    "layer_name": ((str,), "napari layer name when saved from napari"),
    "raw_pixel_size_um": (_NUM, "camera pixel size in the sample, µm"),
    "params": ((dict, list), "pattern parameters (README's parameters JSON; a list: one per time point)"),
    "layout": ((dict,), "frame layout: n_angles, n_phases, n_z, order"),
    "background": (_NUM, "camera offset subtracted before the reconstruction (raw: to subtract), counts"),
    "filter": ((dict,), "Wiener filter settings (FilterSettings fields; form: wiener or hifi)"),
    "pinn": ((dict,), "PINN settings (mode, seed, iterations, uncertainty_samples) and run facts "
                      "(iterations_run, device, seconds)"),
    "denoiser": ((dict,), "raw-frame denoiser: model path, consistency summary"),
    "estimated_on": ((str,), "where the pattern was estimated (batch)"),
    "z_step_um": (_NUM, "distance between z planes, µm"),
    "channel": ((int,), "channel reconstructed from a multi-channel file"),
    "plane": ((int,), "flat plane index t·Z + z (dock)"),
    "request": ((dict,), "the batch settings (compared on a rerun)"),
    "simulation": ((dict,), "simulation settings (simulate, sample data)"),
}


@dataclass
class SimMetadata:
    """The ``napari_sim_ml`` metadata of one image (schema :data:`SCHEMA_VERSION`).

    Every field but ``schema``, ``optics`` and ``extra`` is described in :data:`SCHEMA`
    (units in the descriptions); None means "not stated". ``optics`` holds this image's
    optics (its own pixel size); ``extra``: keys outside the schema, kept as read;
    ``problems``: what reading found wrong (never written); ``schema``: the version read (a
    record is always written as :data:`SCHEMA_VERSION`).
    """

    kind: str | None = None
    method: str | None = None
    source: str | None = None
    source_layer: str | None = None
    name: str | None = None
    layer_name: str | None = None
    optics: ImageOptics | None = None
    raw_pixel_size_um: float | None = None
    params: dict[str, Any] | list[dict[str, Any]] | None = None
    layout: dict[str, Any] | None = None
    background: float | None = None
    filter: dict[str, Any] | None = None
    pinn: dict[str, Any] | None = None
    denoiser: dict[str, Any] | None = None
    estimated_on: str | None = None
    z_step_um: float | None = None
    channel: int | None = None
    plane: int | None = None
    request: dict[str, Any] | None = None
    simulation: dict[str, Any] | None = None
    schema: int = SCHEMA_VERSION
    extra: dict[str, Any] = field(default_factory=dict)
    problems: tuple[str, ...] = ()

    # ------------------------------------------------------------ writing
    def to_dict(self) -> dict[str, Any]:
        """Return the JSON object to store: the stated keys, ``schema`` always, ``extra`` merged in.

        Raw files (``kind == "raw"``) with a background also get ``camera_offset`` (the
        same number) for readers of schema 0.
        """
        out: dict[str, Any] = {"schema": SCHEMA_VERSION}
        for key in SCHEMA:
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        if self.optics is not None:
            out["optics"] = self.optics.to_dict()
        if self.kind == "raw" and self.background is not None:
            out[LEGACY_OFFSET_KEY] = self.background
        for key, value in self.extra.items():
            out.setdefault(key, value)
        return out

    def replace(self, **changes: Any) -> SimMetadata:
        """Return a copy with ``changes`` (e.g. ``kind="widefield"``)."""
        from dataclasses import replace as _replace

        return _replace(self, **changes)

    # ------------------------------------------------------------ reading
    @classmethod
    def from_dict(cls, data: dict[str, Any] | None, strict: bool = False) -> SimMetadata:
        """Read a stored object of any schema version (see the module docstring).

        Parameters
        ----------
        data : dict or None
            The object stored under ``napari_sim_ml`` (None or {} gives an empty record).
        strict : bool
            Raise :class:`SimInputError` for a value of the wrong type instead of naming it
            in ``problems`` (and keeping it in ``extra``).
        """
        data = dict(data or {})
        problems: list[str] = []
        version = data.pop("schema", 0)
        if isinstance(version, bool) or not isinstance(version, int) or version < 0:
            problems.append(f"schema version {version!r} is not a version number; read as version 0")
            version = 0
        elif version > SCHEMA_VERSION:
            problems.append(f"schema version {version} is newer than this plugin's ({SCHEMA_VERSION}); "
                            "keys it does not know are kept unread")
        legacy_offset = data.pop(LEGACY_OFFSET_KEY, None)
        if data.get("background") is None and legacy_offset is not None:
            data["background"] = legacy_offset  # schema 0 raw files
        if isinstance(data.get("denoiser"), str):
            data["denoiser"] = {"model": data["denoiser"]}  # schema 0 batch outputs
        pinn = data.get("pinn")
        if version == 0 and isinstance(pinn, dict) and "device" in pinn and "iterations_run" not in pinn:
            data["pinn"] = {**pinn, "iterations_run": pinn.get("iterations")}  # schema 0 reconstruct outputs
        values: dict[str, Any] = {}
        for key, (types, _) in SCHEMA.items():
            if key not in data:
                continue
            value = data.pop(key)
            if value is None:
                continue
            if not _is(value, types):
                message = f"'{key}' holds {type(value).__name__} {value!r}, not {'/'.join(t.__name__ for t in types)}"
                if strict:
                    raise SimInputError(f"metadata: {message}")
                problems.append(message)
                data[key] = value  # kept unread, written back as it was
                continue
            values[key] = float(value) if types is _NUM else value
        optics = data.pop("optics", None)
        if isinstance(optics, dict):
            read = {}
            for name in ("na", "wavelength_nm", "pixel_size_um", "immersion_index"):
                value = optics.get(name)
                if value is None:
                    continue
                if _is(value, _NUM):
                    read[name] = float(value)
                elif strict:
                    raise SimInputError(f"metadata: optics '{name}' is {value!r}, not a number")
                else:
                    problems.append(f"optics '{name}' holds {value!r}, not a number")
            values["optics"] = ImageOptics(**read)
        elif optics is not None:
            if strict:
                raise SimInputError(f"metadata: 'optics' is {optics!r}, not an object")
            problems.append(f"'optics' holds {type(optics).__name__}, not an object")
            data["optics"] = optics
        return cls(**values, schema=version, extra=data, problems=tuple(problems))

    @property
    def unknown_keys(self) -> tuple[str, ...]:
        """Keys read that the schema does not define (kept in ``extra``)."""
        return tuple(sorted(self.extra))



def _is(value: Any, types: tuple[type, ...]) -> bool:
    if isinstance(value, bool):
        return bool in types
    if types is _NUM:
        return isinstance(value, _NUM) and math.isfinite(value)
    return isinstance(value, types)


def read_metadata(data: dict[str, Any] | None) -> SimMetadata:
    """:meth:`SimMetadata.from_dict` (lenient): the typed view of a stored object."""
    return SimMetadata.from_dict(data)


def layer_metadata(layer_metadata_dict: dict[str, Any] | None) -> SimMetadata:
    """Read the typed record of a napari layer's ``metadata`` (its ``napari_sim_ml`` entry)."""
    return SimMetadata.from_dict((layer_metadata_dict or {}).get(METADATA_KEY))


__all__ = ["METADATA_KEY", "SCHEMA_VERSION", "SCHEMA", "KINDS", "SimMetadata", "ImageOptics", "read_metadata",
           "layer_metadata", "unit_to_um", "length_to_um", "RAW_SUFFIXES", "TIFF_SUFFIXES", "MRC_SUFFIXES",
           "ZARR_SUFFIXES", "OME_TIFF_SUFFIXES", "UNIT_TO_UM"]
