#!/usr/bin/env bash
# Create (or reuse) the levit_mm virtual environment with the tested dependency set.
#
# Idempotent: a second run checks a stamp of the requirement files and returns in seconds.
# The mmcv 2.1.0 wheel (compiled ops, ~12 min on 2 cores) is cached outside the repo, so it
# is built once per machine.  Paths can be moved with LEVIT_MM_HOME.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
HOME_DIR="${LEVIT_MM_HOME:-$HOME/.cache/levit_mm}"
VENV="$HOME_DIR/venv"
WHEELS="$HOME_DIR/wheels"
PY="${PYTHON:-python3.11}"
MMCV_VERSION=2.1.0

log() { printf '[setup] %s\n' "$*" >&2; }

# mmcv 2.1.0's setup.py and mmengine's `mmpretrain::` config lookup need pkg_resources, gone
# from setuptools 70+. torch 2.14 asks for setuptools>=77 but only uses it to build C++
# extensions, so the older pin is harmless; pip's resolver complaint about it is filtered.
pin_old_setuptools() {
  "$VENV/bin/pip" install -q 'setuptools<70' wheel 2>&1 \
    | grep -v -e 'dependency resolver' -e 'requires setuptools' -e '^WARNING: Location' >&2 || true
}

stamp_of() {
  cat "$ROOT/requirements/runtime.txt" "$ROOT/requirements/tests.txt" "$ROOT/tools/setup_env.sh" \
    | sha256sum | cut -c1-16
}
STAMP="$(stamp_of)"

if [[ -f "$VENV/.levit_mm_stamp" && "$(cat "$VENV/.levit_mm_stamp")" == "$STAMP" ]]; then
  # Dependencies are current; only (re)point the editable install at this checkout.
  if ! "$VENV/bin/python" -I -c "import levit_mm, os, sys; sys.exit(os.path.dirname(os.path.dirname(levit_mm.__file__)) != '$ROOT')" 2>/dev/null; then
    log "linking levit_mm from $ROOT"
    "$VENV/bin/pip" install -q --no-deps --no-build-isolation -e "$ROOT"
  fi
  exit 0
fi

mkdir -p "$HOME_DIR" "$WHEELS"
if [[ ! -x "$VENV/bin/python" ]]; then
  log "creating virtual environment $VENV"
  "$PY" -m venv "$VENV"
fi
PIP=("$VENV/bin/pip" install -q)

log "installing torch 2.14.1 / torchvision 0.29.1 (local wheels)"
"${PIP[@]}" torch==2.14.1 torchvision==0.29.1 'numpy<2' 'opencv-python-headless<4.11'
pin_old_setuptools

MMCV_WHEEL="$(ls "$WHEELS"/mmcv-$MMCV_VERSION-*.whl 2>/dev/null | head -n1 || true)"
if [[ -z "$MMCV_WHEEL" ]]; then
  log "building mmcv $MMCV_VERSION with CPU ops (about 12 minutes on 2 cores, done once)"
  BUILD="$(mktemp -d)"
  trap 'rm -rf "$BUILD"' EXIT
  "$VENV/bin/pip" download -q --no-deps --no-build-isolation --no-binary :all: -d "$BUILD" "mmcv==$MMCV_VERSION"
  tar -xzf "$BUILD"/mmcv-$MMCV_VERSION.tar.gz -C "$BUILD"
  # torch 2.14's headers need C++20; mmcv 2.1.0 hard-codes c++14/c++17.
  sed -i -e 's/-std=c++14/-std=c++20/g' -e 's/-std=c++17/-std=c++20/g' "$BUILD/mmcv-$MMCV_VERSION/setup.py"
  "${PIP[@]}" addict packaging Pillow pyyaml yapf ninja
  (cd "$BUILD/mmcv-$MMCV_VERSION" && MMCV_WITH_OPS=1 FORCE_CUDA=0 MAX_JOBS=2 \
    "$VENV/bin/pip" wheel -q --no-build-isolation --no-deps -w "$BUILD/dist" .)
  cp "$BUILD"/dist/mmcv-*.whl "$WHEELS/"
  MMCV_WHEEL="$(ls "$WHEELS"/mmcv-$MMCV_VERSION-*.whl | head -n1)"
fi
log "installing $MMCV_WHEEL"
"${PIP[@]}" "$MMCV_WHEEL"

log "installing the OpenMMLab stack and test references"
"${PIP[@]}" -r "$ROOT/requirements/runtime.txt" -r "$ROOT/requirements/tests.txt"
pin_old_setuptools
"${PIP[@]}" --no-deps --no-build-isolation -e "$ROOT"
"$VENV/bin/python" -c "import mmcv.ops, mmpretrain, mmdet, mmseg, levit_mm" \
  || { log "import check failed"; exit 1; }
echo "$STAMP" > "$VENV/.levit_mm_stamp"
log "environment ready: $VENV"
