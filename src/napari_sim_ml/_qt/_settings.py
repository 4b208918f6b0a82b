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


class SettingsSaver:
    """Write the persisted fields of ``controls`` once a drag or typing pauses (300 ms)."""

    def __init__(self, parent: Any, controls: Any) -> None:
        from qtpy.QtCore import QTimer

        self.controls = controls
        controls.restore(load_settings())
        self.timer = QTimer(parent)
        self.timer.setSingleShot(True)
        self.timer.setInterval(300)
        self.timer.timeout.connect(self.save)
        for widget in controls.persisted.values():
            widget.changed.connect(lambda _value=None: self.timer.start())

    def save(self) -> None:
        """Write the persisted fields now."""
        self.timer.stop()
        write_settings(self.controls.values())

    def flush(self) -> None:
        """Write now if a change is still waiting."""
        if self.timer.isActive():
            self.save()
