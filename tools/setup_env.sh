#!/usr/bin/env bash
# Create (or reuse) the levit_mm virtual environment with the tested dependency set.
#
#   bash tools/setup_env.sh          # light: mmcv's Python part only (mmcv-lite, a wheel):
#                                    #   classification, inference, training, the demos
#   bash tools/setup_env.sh --full   # + mmcv's compiled CPU ops (mmdet/mmseg models) and
#                                    #   the test-suite's references (timm, transformers, onnx)
#
# Idempotent: a second run checks a stamp (requirement files + this script + the level) and
# returns in seconds.  A light environment becomes a full one by running with --full (the
# demo's own mmcv-lite is swapped for mmcv with ops); a full one is never made lighter.  The
# mmcv 2.1.0 wheel with ops (~12 min on 2 cores) is built once and cached outside the repo.
# Paths can be moved with LEVIT_MM_HOME.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
HOME_DIR="${LEVIT_MM_HOME:-$HOME/.cache/levit_mm}"
VENV="$HOME_DIR/venv"
WHEELS="$HOME_DIR/wheels"
PY="${PYTHON:-python3.11}"
MMCV_VERSION=2.1.0

log() { printf '[setup] %s\n' "$*" >&2; }

WANT=light
for arg in "$@"; do
  case "$arg" in
    --full) WANT=full ;;
    --light) WANT=light ;;
    -h|--help) sed -n '2,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "error: unknown option '$arg' (use --full or --light)" >&2; exit 2 ;;
  esac
done

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
# The stamp file holds "<hash> <level>"; an older one-word stamp counts as a full environment.
read -r OLD_STAMP OLD_LEVEL 2>/dev/null < "$VENV/.levit_mm_stamp" || true
OLD_LEVEL="${OLD_LEVEL:-full}"

if [[ "${OLD_STAMP:-}" == "$STAMP" && ( "$WANT" == light || "$OLD_LEVEL" == full ) ]]; then
  # Dependencies are current; only (re)point the editable install at this checkout.
  if ! "$VENV/bin/python" -I -c "import levit_mm, os, sys; sys.exit(os.path.dirname(os.path.dirname(levit_mm.__file__)) != '$ROOT')" 2>/dev/null; then
    log "linking levit_mm from $ROOT"
    "$VENV/bin/pip" install -q --no-deps --no-build-isolation -e "$ROOT"
  fi
  exit 0
fi
# Requirements changed: refresh at the level asked for, never below the one installed.
LEVEL="$WANT"
if [[ -n "${OLD_STAMP:-}" && "$OLD_LEVEL" == full ]]; then LEVEL=full; fi

mkdir -p "$HOME_DIR" "$WHEELS"
if [[ ! -x "$VENV/bin/python" ]]; then
  log "creating virtual environment $VENV"
  "$PY" -m venv "$VENV"
fi
PIP=("$VENV/bin/pip" install -q)

log "installing torch 2.14.1 / torchvision 0.29.1 (local wheels)"
"${PIP[@]}" torch==2.14.1 torchvision==0.29.1 'numpy<2' 'opencv-python-headless<4.11'
pin_old_setuptools

has_ops() { "$VENV/bin/python" -c "import importlib.util as u, sys; sys.exit(u.find_spec('mmcv._ext') is None)" 2>/dev/null; }
has_mmcv() { "$VENV/bin/python" -c "import importlib.util as u, sys; sys.exit(u.find_spec('mmcv') is None)" 2>/dev/null; }

if [[ "$LEVEL" == full ]]; then
  if ! has_ops; then
    MMCV_WHEEL="$(ls "$WHEELS"/mmcv-$MMCV_VERSION-cp*.whl 2>/dev/null | head -n1 || true)"
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
      MMCV_WHEEL="$(ls "$WHEELS"/mmcv-$MMCV_VERSION-cp*.whl | head -n1)"
    fi
    # mmcv-lite (the light environment's) and mmcv own the same files: one at a time.
    "$VENV/bin/pip" uninstall -q -y mmcv-lite 2>/dev/null || true
    log "installing $MMCV_WHEEL"
    "${PIP[@]}" --force-reinstall --no-deps "$MMCV_WHEEL"
    "${PIP[@]}" addict packaging Pillow pyyaml yapf
  fi
fi

REQS=(-r "$ROOT/requirements/runtime.txt")
if [[ "$LEVEL" == full ]]; then
  REQS+=(-r "$ROOT/requirements/tests.txt")
elif ! has_mmcv; then
  # mmcv's Python part as a wheel (mmcv-lite, the same release without compiled ops): no
  # compiler, seconds.  Resolved with the other requirements, so numpy stays below 2.
  log "mmcv: mmcv-lite $MMCV_VERSION, without compiled ops (tools/setup_env.sh --full adds them)"
  REQS+=("mmcv-lite==$MMCV_VERSION")
fi
log "installing the OpenMMLab stack$([[ "$LEVEL" == full ]] && echo ' and test references')"
"${PIP[@]}" "${REQS[@]}"
pin_old_setuptools
"${PIP[@]}" --no-deps --no-build-isolation -e "$ROOT"
if [[ "$LEVEL" == full ]]; then
  CHECK="import levit_mm, mmcv.ops, mmpretrain, mmdet, mmseg"
else
  CHECK="import levit_mm, mmcv, mmpretrain, sklearn"
fi
"$VENV/bin/python" -c "$CHECK" || { log "import check failed"; exit 1; }
echo "$STAMP $LEVEL" > "$VENV/.levit_mm_stamp"
log "environment ready ($LEVEL): $VENV"
