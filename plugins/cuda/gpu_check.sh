#!/usr/bin/env bash
# GPU check for mxcore-cuda on a real NVIDIA GPU (e.g. one H100), with no network:
# uses the machine's Python (3.12 with torch, triton, cupy-cuda13x preinstalled) and this
# checkout on PYTHONPATH instead of pip-installing the repository.  Missing small pure
# dependencies (pluggy, safetensors, tqdm, threadpoolctl, scipy, ml_dtypes, pytest) are installed
# from plugins/cuda/.gpu_wheels (carry it along) into a temporary folder, if present.
#
#   bash plugins/cuda/gpu_check.sh [--conformance-timeout S] [--skip-conformance]
#
# Prints one JSON object (last line of stdout); also writes it to $OUT/gpu_check.json
# when $OUT is set.  Budget: about 7.5 minutes (--budget); the conformance run takes what
# the other steps leave, and the MLP threshold variants run only if it leaves time over.
set -u
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-python3}"
WORK="$(mktemp -d)"
export PYTHONPATH="$WORK/site:$ROOT/hal/src:$ROOT/plugins/cpu:$ROOT/plugins/cuda:$ROOT${PYTHONPATH:+:$PYTHONPATH}"
unset MXCORE_CUDA_INTERPRET TRITON_INTERPRET MXCORE_PLUGINS MXCORE_NO_THIRD_PARTY
export PYTHONDONTWRITEBYTECODE=1
missing=$("$PY" - <<'PYEOF'
import importlib
need = {"pluggy": "pluggy", "safetensors": "safetensors", "tqdm": "tqdm", "ml_dtypes": "ml_dtypes",
        "threadpoolctl": "threadpoolctl", "scipy": "scipy", "pytest": "pytest"}
missing = [p for m, p in need.items() if importlib.util.find_spec(m) is None]
if "pytest" in missing:
    missing += ["iniconfig", "packaging", "pygments", "pluggy"]
print(" ".join(sorted(set(missing))))
PYEOF
)
if [ -n "$missing" ]; then
  echo "missing python packages: $missing" >&2
  if [ -d "$ROOT/plugins/cuda/.gpu_wheels" ]; then
    "$PY" -m pip install -q --no-index --no-deps --find-links "$ROOT/plugins/cuda/.gpu_wheels" \
      --target "$WORK/site" $missing >&2 || echo "local wheel install failed" >&2
  fi
fi
exec "$PY" "$ROOT/plugins/cuda/gpu_check.py" --work "$WORK" "$@"
