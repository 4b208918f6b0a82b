#!/usr/bin/env bash
# Idempotent set-up: system libraries for Qt under Xvfb, a venv in .venv with the CPU build of torch,
# and this package in editable mode with its testing extra.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES="xvfb xauth libgl1 libegl1 libgl1-mesa-dri libglib2.0-0 libfontconfig1 libdbus-1-3 libxkbcommon0
libxkbcommon-x11-0 libx11-xcb1 libxcb1 libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-randr0
libxcb-render-util0 libxcb-xinerama0 libxcb-xfixes0 libxcb-shape0 libxcb-xkb1 libxcb-cursor0"
if command -v apt-get >/dev/null 2>&1; then
  missing=$(for p in $APT_PACKAGES; do dpkg -s "$p" >/dev/null 2>&1 || echo "$p"; done)
  if [ -n "$missing" ]; then
    sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
    echo "installing system packages: $(echo $missing | tr '\n' ' ')"
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
  fi
fi

PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
# torch first, pinned: this version resolves to a local CPU wheel; the constraint keeps every later
# install from pulling the multi-GB CUDA build.
echo "torch==2.13.0" > .venv/constraints.txt
.venv/bin/pip install -q --disable-pip-version-check -c .venv/constraints.txt "torch==2.13.0" 2>&1 | grep -v "^WARNING: Location" || true
.venv/bin/pip install -q --disable-pip-version-check -c .venv/constraints.txt -e ".[testing]" 2>&1 | grep -v "^WARNING: Location" || true
.venv/bin/python -c "import napari_sim_ml, torch; print('napari-sim-ml', napari_sim_ml.__version__, '| torch', torch.__version__)"
