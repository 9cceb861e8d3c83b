"""The cuda plugin's host cost, tracked on any machine: the stand-in Triton driver
(plugins/cuda/mxcore_cuda/standin_driver.py) compiles the kernels for sm_90 and
logs their launches, so the host side of the GPU code path runs without a GPU.
The scripts run in their own processes (the stand-in replaces a process's Triton
driver); one run per benchmark process serves every method."""
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parents[2] / "plugins" / "cuda"
_RESULTS = {}


def _script(name, *argv):
    if name not in _RESULTS:
        r = subprocess.run([sys.executable, str(SCRIPTS / name), *argv], capture_output=True,
                           text=True, timeout=600)
        if r.returncode:
            raise RuntimeError(f"{name} failed:\n{r.stderr[-2000:]}")
        _RESULTS[name] = json.loads(r.stdout.strip().splitlines()[-1])
    return _RESULTS[name]


class CudaHostPath:
    """Host microseconds of the GPU code path through the launch cache ("cached") and
    through Triton's own launch path ("triton_path", MXCORE_CUDA_FAST_LAUNCH=0)."""

    params = [["cached", "triton_path"]]
    param_names = ["launch_path"]
    unit = "us"
    timeout = 600

    def setup(self, path):
        if not all(importlib.util.find_spec(m) for m in ("mxcore_cuda", "triton")):
            raise NotImplementedError("the cuda plugin or Triton is not installed")
        self.step = _script("standin_step.py", "--steps", "300", "--rounds", "3")
        self.launch = _script("launch_overhead.py", "--rounds", "3", "--calls", "500")

    def track_mlp_step_us(self, path):
        """One MNIST MLP training step (784-256 relu-10, batch 64, SGD momentum):
        dispatch, autograd, kernel wrappers and 8 launches."""
        return self.step[path]["total"]

    def track_dense_launch_us(self, path):
        """One launch of the fused Dense kernel (64x784x256, relu)."""
        times = self.launch["kernels"]["dense_relu_64x784x256"]
        return times["mxcore_cached_us" if path == "cached" else "triton_path_us"]
