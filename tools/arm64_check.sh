#!/usr/bin/env bash
# Run mxcore's aarch64 checks (tests/arm64/) on an emulated aarch64 Python.
#
# Builds the Debian arm64 root with ../shared/tools/arm64/setup.sh when $ROOT lacks one
# (about 6 minutes on 2 cores; needs root, binfmt_misc and the Debian and PyPI mirrors),
# installs aarch64 wheels of mxcore's dependencies into its /opt/venv, copies this
# checkout (tracked and untracked, not ignored, files) into the root, installs hal, the
# CPU and ARM plugins and the core there, and runs the tests. Emulation proves that code
# runs and computes the right numbers on aarch64; it is far too slow for timings.
#
#   bash tools/arm64_check.sh [pytest args]
#       (default: tests/arm64 and the ARM plugin's own tests, whose guards then pass
#       for real)
# Exit status: pytest's, or 3 when the emulated root cannot be built here (no root
# rights, binfmt_misc or mirrors): .ci/run reports that and goes on.
#   ROOT=/tmp/arm64/root SHARED=../shared bash tools/arm64_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=${ROOT:-/tmp/arm64/root}
SHARED=${SHARED:-../shared}
TOOLS="$SHARED/tools/arm64"
log() { printf '\n=== [%s] arm64: %s\n' "$(date +%T)" "$*"; }

if [ ! -x "$ROOT/opt/venv/bin/python" ]; then
    log "building the emulated root in $ROOT"
    if ! ROOT="$ROOT" VENV=1 bash "$TOOLS/setup.sh"; then
        log "the emulated aarch64 root could not be built (see above)"
        exit 3
    fi
fi
run() { PROJECT="$ROOT/opt/mxcore-src" ROOT="$ROOT" TIMEOUT="${TIMEOUT:-2400}" bash "$TOOLS/arm-run.sh" "$@"; }

log "copying the checkout into $ROOT/opt/mxcore-src"
rm -rf "$ROOT/opt/mxcore-src"
mkdir -p "$ROOT/opt/mxcore-src"
git ls-files -co --exclude-standard -z | tar --null -T - -cf - | tar -xf - -C "$ROOT/opt/mxcore-src"

log "dependencies (aarch64 wheels from PyPI) and mxcore (hal, cpu and arm plugins, core)"
run /opt/venv/bin/pip install -q scipy threadpoolctl ml_dtypes safetensors tqdm onnx onnxruntime \
    hypothesis "setuptools>=70.1"
run /opt/venv/bin/pip install -q --no-deps --no-build-isolation ./hal ./plugins/cpu ./plugins/arm .
run /opt/venv/bin/python -c "import platform, mxcore, onnxruntime; \
print(platform.machine(), 'mxcore', mxcore.__version__, 'onnxruntime', onnxruntime.__version__)"

log "tests"
if [ "$#" -eq 0 ]; then
    set -- tests/arm64 tests/one_device/test_arm_kernels.py tests/no_device/test_arm_plugin.py
fi
run /opt/venv/bin/python -m pytest -q -p no:cacheprovider "$@"
