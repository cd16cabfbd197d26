#!/usr/bin/env bash
# Creates .venv with the verified OpenMMLab stack for rlkd_mm.
# mmcv 2.1.0 ships no wheel for this torch, so it is compiled once (C++20, CPU ops) into a cache
# keyed by torch and mmcv versions; later runs reuse that wheel and finish in seconds.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${RLKD_MM_VENV:-$ROOT/.venv}"
PY="${PYTHON:-python3}"
TORCH_VERSION=2.14.1
MMCV_VERSION=2.1.0
CACHE="${RLKD_MM_CACHE:-$HOME/.cache/rlkd_mm}"
WHEEL_DIR="$CACHE/wheels/mmcv-$MMCV_VERSION-torch-$TORCH_VERSION"
STAMP="$VENV/.rlkd_mm_ready"
REQ_HASH=$(cat "$ROOT"/requirements/*.txt "$ROOT/tools/setup_env.sh" "$ROOT/setup.py" | sha256sum | cut -c1-16)

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$REQ_HASH" ]; then
  exit 0
fi

log() { echo "[setup_env] $*"; }

if [ ! -x "$VENV/bin/python" ]; then
  log "creating $VENV"
  "$PY" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip)
"${PIP[@]}" install -q --upgrade pip
"${PIP[@]}" install -q -r "$ROOT/requirements/build.txt"
# mmcv's setup.py imports pkg_resources (setuptools<70). torch declares a newer setuptools that
# it only needs for torch.utils.cpp_extension on Python >= 3.12, so pip's warning is expected.
"${PIP[@]}" install -q "setuptools<70" 2>&1 | grep -v "incompatible\|dependency resolver\|dependency conflicts" || true

if ! ls "$WHEEL_DIR"/mmcv-"$MMCV_VERSION"-*.whl >/dev/null 2>&1; then
  log "building mmcv $MMCV_VERSION against torch $TORCH_VERSION (about 12 minutes on 2 cores)"
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  "${PIP[@]}" download -q --no-deps --no-binary :all: --no-build-isolation \
    "mmcv==$MMCV_VERSION" -d "$work"
  tar -xzf "$work"/mmcv-"$MMCV_VERSION".tar.gz -C "$work"
  src="$work/mmcv-$MMCV_VERSION"
  # torch >= 2.14 headers need C++20; mmcv's setup.py hard-codes older standards.
  sed -i -e "s/'-std=c++14'/'-std=c++20'/g" -e "s/'-std=c++17'/'-std=c++20'/g" "$src/setup.py"
  mkdir -p "$WHEEL_DIR"
  (cd "$src" && MMCV_WITH_OPS=1 MAX_JOBS="${MAX_JOBS:-2}" \
    "$VENV/bin/python" -m pip wheel -q --no-build-isolation --no-deps -w "$work/dist" .)
  mv "$work"/dist/mmcv-*.whl "$WHEEL_DIR/"
fi
"${PIP[@]}" install -q --no-deps "$WHEEL_DIR"/mmcv-"$MMCV_VERSION"-*.whl
# mmcv's own runtime requirements (no build deps).
"${PIP[@]}" install -q addict packaging Pillow pyyaml yapf opencv-python-headless
"${PIP[@]}" install -q -r "$ROOT/requirements/mminstall.txt" -r "$ROOT/requirements/runtime.txt" \
  -r "$ROOT/requirements/tests.txt" -c "$ROOT/requirements/verified.txt"
# The resolver above may lift setuptools to a release without pkg_resources, which mmengine's
# package lookup and openmim import; torch only needs a newer one on Python >= 3.12.
"${PIP[@]}" install -q "setuptools<70" 2>&1 | grep -v "incompatible\|dependency resolver\|dependency conflicts" || true
# A develop install (egg-link to this checkout): openmim locates a package's .mim folder through
# pkg_resources, which sees a PEP 660 editable install in site-packages, where it is not.
"${PIP[@]}" uninstall -q -y rlkd_mm >/dev/null 2>&1 || true
(cd "$ROOT" && "$VENV/bin/python" setup.py -q develop --no-deps >/dev/null 2>&1) || \
  (cd "$ROOT" && "$VENV/bin/python" setup.py develop --no-deps)
"$VENV/bin/python" -c "import mmcv.ops, mmdet, mmpretrain, rlkd_mm; print('stack ok', mmcv.__version__)"
echo "$REQ_HASH" > "$STAMP"
log "ready: $VENV"
