"""Widget settings that persist between sessions (a small JSON file).

The file is ``$NAPARI_SIM_ML_SETTINGS`` when set (tests point it to a temporary
folder), else ``<user config dir>/napari-sim-ml/widget.json``. Unreadable or
stale files are ignored: settings are a convenience, never a reason to fail.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

ENV = "NAPARI_SIM_ML_SETTINGS"


def settings_path() -> Path:
    if os.environ.get(ENV):
        return Path(os.environ[ENV])
    from platformdirs import user_config_dir

    return Path(user_config_dir("napari-sim-ml")) / "widget.json"


def load_settings() -> dict[str, Any]:
    try:
        data = json.loads(settings_path().read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_settings(values: dict[str, Any]) -> None:
    path = settings_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".part")
        tmp.write_text(json.dumps(values, indent=1, default=str))
        os.replace(tmp, path)
    except OSError:
        pass  # read-only home: settings simply do not persist
