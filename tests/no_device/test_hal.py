"""hal values: device strings, interning, dtypes, kernel records."""
from __future__ import annotations

import pickle

import numpy as np
import pytest

import hal


def test_parse_device_forms():
    assert hal.parse_device("cpu") is hal.Device("cpu", 0)
    assert hal.parse_device("cuda:1") is hal.Device("cuda", 1)
    assert hal.parse_device("gpu(2)") is hal.Device("cuda", 2)
    assert hal.parse_device(" cpu : 3 ") is hal.Device("cpu", 3)
    for bad in ("", "cuda:", "1cpu", "cpu:-1", "cpu:x"):
        with pytest.raises(ValueError, match="cannot parse device"):
            hal.parse_device(bad)
    with pytest.raises(TypeError):
        hal.parse_device(3)


def test_device_value_semantics():
    d = hal.Device("cuda", 0)
    assert repr(d) == "cuda(0)" and str(d) == "cuda:0"
    assert d.device_type == "gpu" and d.device_id == 0
    assert d == "cuda:0" and d == "gpu(0)" and d != "cpu" and d != "nonsense::"
    assert hash(d) == hash(hal.Device("cuda", 0))
    assert pickle.loads(pickle.dumps(d)) is d
    with pytest.raises(AttributeError):
        d.index = 3


def test_dtypes():
    assert hal.to_dtype("float32") == np.float32
    assert hal.to_dtype("float") == np.float32 and hal.to_dtype(int) == np.int32
    assert hal.to_dtype(np.float16) == np.float16 and hal.dtype_name(np.int8) == "int8"
    assert set(hal.ALL_DTYPES) == {"float16", "float32", "float64", "bfloat16", "int8", "uint8",
                                   "int32", "int64", "bool"}
    # bfloat16 from ml_dtypes: numpy kind "V", a float for mxcore
    import ml_dtypes
    bf16 = hal.to_dtype("bfloat16")
    assert bf16 == np.dtype(ml_dtypes.bfloat16) and hal.to_dtype(ml_dtypes.bfloat16) == bf16
    assert bf16.kind == "V" and hal.is_float(bf16) and hal.dtype_name(bf16) == "bfloat16"
    assert not hal.is_float(np.dtype("int32")) and hal.is_float(np.dtype("float16"))
    with pytest.raises(TypeError, match="unknown dtype 'float8'"):
        hal.to_dtype("float8")


def test_kernel_record():
    k = hal.Kernel(op="add", device="cpu", fn=np.add, dtypes=["float32"])
    assert k.dtypes == frozenset({"float32"}) and k.accepts("float32") and not k.accepts("int8")
    assert k.name == "add" and k.priority == 0 and k.applies is None


def test_base_device_type_protocol():
    class Host(hal.DeviceType):
        kind = "host"

    t = Host()
    assert t.is_available() and t.availability() == (True, "")
    buf = t.allocate(0, (2, 3), np.float32)
    assert buf.shape == (2, 3) and buf.dtype == np.float32
    src = np.arange(3.0)
    copy = t.from_host(0, src)
    src[0] = 9
    assert copy[0] == 0 and t.to_host(0, copy) is not None
    with t.stream(0) as s:
        s.synchronize()
    e = t.event(0)
    e.record()
    assert e.query()
    t.synchronize(0)
    with pytest.raises(hal.DeviceUnavailableError, match="host:5 does not exist"):
        t.check_index(5)

    class Broken(hal.DeviceType):
        kind = "broken"

        def availability(self):
            raise RuntimeError("driver exploded")

    assert Broken().is_available() is False


def test_hookspecs_are_pluggy_markers():
    import pluggy
    pm = pluggy.PluginManager(hal.PROJECT_NAME)
    pm.add_hookspecs(hal.hookspecs)
    assert {"register_devices", "register_kernels", "register_ops"} <= set(
        name for name in dir(pm.hook) if name.startswith("register_"))


def test_device_blocks_stack_per_thread():
    import threading

    from hal import Device, scoped_device
    a, b = Device("cpu", 0), Device("cuda", 1)  # values only: no device is touched
    assert scoped_device() is None
    with a:
        with b as entered:
            assert entered is b and scoped_device() is b
            other = []
            t = threading.Thread(target=lambda: other.append(scoped_device()))
            t.start()
            t.join()
            assert other == [None]
        assert scoped_device() is a
    assert scoped_device() is None
