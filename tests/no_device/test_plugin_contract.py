"""The plugin contract as mxcore enforces it on plugins registered at run time:
an operator plugin's rules hold for calls by name, kernels that raise or return
the wrong dtype are named, device plugins declare fallback chains and may see
every kernel output, policy files and MXCORE_DEVICE are validated."""
from __future__ import annotations

import gc
import weakref

import numpy as np
import pytest

import hal
import mxcore as mx
from mxcore.base import MXCoreError, NoKernelError, OperatorError, PluginError
from mxcore.op import Op
from mxcore.registry import Policy

# --------------------------------------------------------------------------------------
# an operator plugin with a shape/dtype rule
# --------------------------------------------------------------------------------------

RULE_CALLS = []


def make_outer_op():
    op = Op("toy_outer", 2, attrs={"scale": 1.0})

    @op.def_infer
    def _infer(shapes, dtypes, attrs):
        RULE_CALLS.append(shapes)
        a, b = shapes
        if len(a) != 1 or len(b) != 1:
            raise MXCoreError(f"toy_outer takes two 1-d arrays, got {a} and {b}")
        if dtypes[0] != dtypes[1]:
            raise MXCoreError(f"toy_outer: dtypes {dtypes[0]} and {dtypes[1]} differ")
        return [(a[0], b[0])], [dtypes[0]]
    return op


def outer_kernel(a, b, scale):
    # numpy would happily broadcast (4,1) x (8,) to (4,8): only the rule stops it
    return (a.reshape(-1, 1) * b.reshape(1, -1) * scale).astype(a.dtype)


def flat_outer_kernel(a, b, scale):
    return np.multiply.outer(a, b).ravel() * scale  # wrong shape: 1-d


class OuterPlugin:
    MXCORE_PLUGIN_API = hal.PLUGIN_API_VERSION

    def __init__(self, fn=outer_kernel):
        self.op, self.fn = make_outer_op(), fn

    @hal.hookimpl
    def register_ops(self, register):
        register(self.op)

    @hal.hookimpl
    def register_kernels(self, register):
        register(hal.Kernel(op="toy_outer", device="cpu", fn=self.fn, name="toy_outer",
                            dtypes={"float32", "float64"}))


def test_a_plugin_ops_rule_rejects_bad_shapes(runtime_plugins):
    runtime_plugins(OuterPlugin(), "toy-outer")
    good = mx.nd.toy_outer(mx.nd.ones((4,)), mx.nd.ones((8,)), scale=2.0)
    assert good.shape == (4, 8) and float(good.asnumpy()[0, 0]) == 2.0
    with pytest.raises(OperatorError) as info:
        mx.nd.toy_outer(mx.nd.ones((4, 1)), mx.nd.ones((8,)))
    msg = str(info.value)
    assert "toy_outer" in msg and "(4, 1)" in msg and "(8,)" in msg and "cpu(0)" in msg
    with pytest.raises(OperatorError, match="two 1-d arrays"):
        mx.nd.invoke("toy_outer", mx.nd.ones((4, 1)), mx.nd.ones((8,)))


def test_a_plugin_ops_rule_rejects_mixed_dtypes(runtime_plugins):
    runtime_plugins(OuterPlugin(), "toy-outer")
    with pytest.raises(OperatorError, match="float32 and float64 differ"):
        mx.nd.toy_outer(mx.nd.ones((4,)), mx.nd.ones((8,), dtype="float64"))


def test_a_missing_or_foreign_input_is_a_clear_error(runtime_plugins):
    runtime_plugins(OuterPlugin(), "toy-outer")
    with pytest.raises(OperatorError, match=r"'toy_outer': takes 2 input array\(s\), got 1"):
        mx.nd.toy_outer(mx.nd.ones((4,)))
    with pytest.raises(OperatorError, match="expected NDArray inputs"):
        mx.nd.toy_outer(mx.nd.ones((4,)), np.ones(8, np.float32))
    with pytest.raises(MXCoreError, match="unknown attribute"):
        mx.nd.toy_outer(mx.nd.ones((4,)), mx.nd.ones((8,)), scal=2)


def test_the_rule_runs_once_per_signature(runtime_plugins):
    runtime_plugins(OuterPlugin(), "toy-outer")
    a, b = mx.nd.ones((4,)), mx.nd.ones((8,))
    mx.nd.toy_outer(a, b)                      # the first call of a signature checks it
    assert RULE_CALLS
    RULE_CALLS.clear()
    for _ in range(5):
        mx.nd.toy_outer(a, b)
    assert RULE_CALLS == []
    mx.nd.toy_outer(a, mx.nd.ones((3,)))       # a new signature: checked once more
    mx.nd.toy_outer(a, b, scale=3.0)           # so is a new attribute value
    assert len(RULE_CALLS) == 2


def test_a_kernel_output_that_breaks_the_rule_is_reported(runtime_plugins):
    runtime_plugins(OuterPlugin(flat_outer_kernel), "toy-outer")
    with pytest.raises(OperatorError, match=r"returned \(32,\) float32 where the operator's "
                                            r"rule gives \(4, 8\) float32"):
        mx.nd.toy_outer(mx.nd.ones((4,)), mx.nd.ones((8,)))


# --------------------------------------------------------------------------------------
# kernels that raise or change the dtype
# --------------------------------------------------------------------------------------


def bad_negative(a):
    return np.negative(a.astype(np.float64))    # float64 for float16: a bug


def failing_exp(a):
    raise ZeroDivisionError("kernel bug")


class BadKernels:
    MXCORE_PLUGIN_API = hal.PLUGIN_API_VERSION

    @hal.hookimpl
    def register_kernels(self, register):
        register(hal.Kernel(op="negative", device="cpu", fn=bad_negative, name="bad_negative",
                            dtypes={"float16"}, priority=50))
        register(hal.Kernel(op="exp", device="cpu", fn=failing_exp, name="failing_exp",
                            dtypes={"float16"}, priority=50))


def test_a_kernel_returning_another_dtype_is_named(runtime_plugins):
    runtime_plugins(BadKernels(), "bad-kernels")
    x = mx.nd.ones((3,), dtype="float16")
    for _ in range(2):  # reported every time, not only on the first call
        with pytest.raises(OperatorError) as info:
            -x
        msg = str(info.value)
        assert "kernel bad-kernels:bad_negative returned (3,) float64" in msg
        assert "rule gives dtype float16" in msg and "'negative'" in msg


def test_a_kernel_that_raises_is_named_with_its_plugin(runtime_plugins):
    runtime_plugins(BadKernels(), "bad-kernels")
    with pytest.raises(OperatorError) as info:
        mx.nd.exp(mx.nd.ones((3,), dtype="float16"))
    msg = str(info.value)
    assert "kernel bad-kernels:failing_exp raised ZeroDivisionError: kernel bug" in msg
    assert "(3,) float16" in msg and "cpu(0)" in msg


def test_other_dtypes_keep_the_builtin_kernels(runtime_plugins):
    runtime_plugins(BadKernels(), "bad-kernels")
    np.testing.assert_array_equal((-mx.nd.ones((3,))).asnumpy(), -np.ones(3, np.float32))


# --------------------------------------------------------------------------------------
# device plugins: fallback chains and output accounting
# --------------------------------------------------------------------------------------


class BorrowingDevice(hal.DeviceType):
    """A device on host numpy memory that borrows the CPU kernels."""
    kind = "fakeacc"
    xp = np
    dtypes = ("float32",)
    fallback = ("cpu",)


class LoneDevice(hal.DeviceType):
    kind = "loneacc"
    xp = np
    dtypes = ("float32",)


class CountingDevice(BorrowingDevice):
    """Accounts for the bytes of every live array that kernels return."""
    kind = "countacc"

    def __init__(self):
        self.live = 0

    def adopt_output(self, array):
        self.live += array.nbytes
        weakref.finalize(array, self._release, array.nbytes)
        return array

    def _release(self, nbytes):
        self.live -= nbytes

    def memory_stats(self, index):
        return {"live_bytes": self.live}


class DevicePlugin:
    MXCORE_PLUGIN_API = hal.PLUGIN_API_VERSION

    def __init__(self, *types):
        self.types = types

    @hal.hookimpl
    def register_devices(self, register):
        for t in self.types:
            register(t)


def test_a_device_declares_its_own_fallback_chain(runtime_plugins):
    runtime_plugins(DevicePlugin(BorrowingDevice(), LoneDevice()), "fake-devices")
    dev = mx.device("fakeacc:0")
    x = mx.nd.full((2, 3), 2.0, ctx=dev)
    y = (x * x + 1).sum(axis=1)
    assert y.context == dev
    np.testing.assert_array_equal(y.asnumpy(), [15.0, 15.0])
    from mxcore.plugins import registry
    assert registry().chain("fakeacc") == ["fakeacc", "cpu"]
    assert "fallback chain: fakeacc -> cpu" in registry().explain("add", "fakeacc", "float32")


def test_no_kernel_error_tells_about_fallback(runtime_plugins):
    runtime_plugins(DevicePlugin(LoneDevice()), "fake-devices")
    with pytest.raises(NoKernelError) as info:
        mx.nd.full((2,), 1.0, ctx=mx.device("loneacc"))
    msg = str(info.value)
    assert "'full' has no kernel for device kind 'loneacc'" in msg
    assert "fallback" in msg and "MXCORE_REGISTRY" in msg and "kernels exist for: cpu" in msg


def test_a_policy_fallback_overrides_the_devices(runtime_plugins):
    runtime_plugins(DevicePlugin(BorrowingDevice()), "fake-devices",
                    prefer={"devices": {"fakeacc": {"fallback": []}}})
    from mxcore.plugins import registry
    assert registry().chain("fakeacc") == ["fakeacc"]
    with pytest.raises(NoKernelError, match="no kernel for device kind 'fakeacc'"):
        mx.nd.full((2,), 1.0, ctx=mx.device("fakeacc"))


def test_a_device_sees_every_kernel_output(runtime_plugins):
    counting = CountingDevice()
    runtime_plugins(DevicePlugin(counting), "fake-devices")
    dev = mx.device("countacc")
    a = mx.nd.ones((256,), ctx=dev)              # a creation kernel: 1 KiB
    mx.nd.waitall()  # (an asynchronous engine runs the kernels later)
    assert counting.live == 1024
    b = a + a                                    # a binary kernel
    c = mx.nd.split(mx.nd.ones((4, 8), ctx=dev), num_outputs=2, axis=0)  # a tuple of two
    mx.nd.waitall()
    assert counting.live == 1024 * 2 + 128 + 64 * 2
    from mxcore.device import memory_stats
    assert memory_stats(dev) == {"live_bytes": counting.live}
    assert memory_stats("countacc:0") == {"live_bytes": counting.live}
    assert b.__class__ is mx.nd.NDArray
    del a, b, c
    mx.nd.waitall()
    gc.collect()
    assert counting.live == 0


def test_the_adopting_wrapper_keeps_the_kernels_names(runtime_plugins):
    from mxcore.dispatch import _for_device
    from mxcore.plugins import registry
    runtime_plugins(DevicePlugin(CountingDevice()), "fake-devices")

    def my_kernel(x):
        return x
    wrapped = _for_device(hal.Kernel(op="copy", device="cpu", fn=my_kernel, dtypes={"float32"}),
                          registry(), "countacc")
    assert wrapped is not my_kernel and wrapped.__wrapped__ is my_kernel
    assert wrapped.__qualname__ == my_kernel.__qualname__


def test_devices_that_do_not_adopt_outputs_get_the_kernel_itself():
    from mxcore.dispatch import _for_device
    from mxcore.plugins import registry
    fn = np.add
    assert _for_device(hal.Kernel(op="add", device="cpu", fn=fn, dtypes={"float32"}),
                       registry(), "cpu") is fn


def test_the_profiler_names_the_device_a_borrowed_kernel_ran_on(runtime_plugins):
    runtime_plugins(DevicePlugin(BorrowingDevice()), "fake-devices")
    x = mx.nd.ones((3,), ctx=mx.device("fakeacc"))
    mx.profiler.set_config(synchronize=True)
    mx.profiler.set_state("run")
    try:
        (x * 2).wait_to_read()
    finally:
        mx.profiler.set_state("stop")
        mx.profiler.set_config(synchronize=False)
    events = [e[6] for e in mx.profiler._P.events if e[6].get("op") == "mul_scalar"]
    mx.profiler._P.events.clear()
    assert events and events[-1]["device"] == "fakeacc"
    assert events[-1]["kernel"].startswith("mxcore-cpu:")


# --------------------------------------------------------------------------------------
# policy files, MXCORE_DEVICE, array conversion
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("body, message", [
    ('[global]\ndeny = "mxcore-cpu"\n',
     "[global] deny must be a list of strings, got str 'mxcore-cpu'"),
    ('[devices.cpu]\nfalback = ["cpu"]\n', "[devices.cpu] has unknown key 'falback'"),
    ('[ops.add.cpu]\nprefer = [1]\n', "[ops.add.cpu] prefer must be a list of strings"),
    ('[ops.add]\nprefer = ["x"]\n', "[ops.add.prefer] must be a table"),
    ('[device.cpu]\nprefer = []\n', "key 'device' is unknown"),
    ('devices = 3\n', "[devices] must be a table"),
])
def test_a_wrongly_typed_policy_is_refused(tmp_path, monkeypatch, body, message):
    path = tmp_path / "policy.toml"
    path.write_text(body)
    monkeypatch.setenv("MXCORE_REGISTRY", str(path))
    with pytest.raises(PluginError) as info:
        Policy.load()
    assert message in str(info.value)
    assert f"{path} (MXCORE_REGISTRY)" in str(info.value)


def test_a_valid_policy_loads(tmp_path):
    path = tmp_path / "policy.toml"
    path.write_text('[global]\ndeny = ["x:y"]\n[devices.edge]\nfallback = ["cpu"]\n'
                    '[ops.add.cpu]\nprefer = ["mxcore-cpu"]\n')
    policy = Policy.load(str(path))
    assert policy.fallback("edge") == ["cpu"] and policy.fallback("nothing") is None
    assert policy.denied("add", "cpu") == ["x:y"]


def test_mxcore_device_names_the_variable(monkeypatch):
    monkeypatch.setenv("MXCORE_DEVICE", "bogus")
    with pytest.raises(hal.DeviceUnavailableError) as info:
        mx.nd.ones((2,))
    assert "MXCORE_DEVICE='bogus'" in str(info.value)
    assert "no plugin provides device kind 'bogus'" in str(info.value)


@pytest.mark.parametrize("source, dtype", [([2**40], "int32"), (np.array([300]), "uint8"),
                                           ([-1], "uint8"), (np.array([np.nan]), "int64"),
                                           ([2.0**63], "int64")])
def test_out_of_range_integers_are_refused(source, dtype):
    with pytest.raises(MXCoreError, match=f"{dtype}"):
        mx.nd.array(source, dtype=dtype)


def test_in_range_integer_conversions_still_work():
    assert mx.nd.array([2**31 - 1, -2**31], dtype="int32").asnumpy().tolist() == [
        2**31 - 1, -2**31]
    assert mx.nd.array([1.7, -2.5], dtype="int32").asnumpy().tolist() == [1, -2]  # truncates
    assert mx.nd.array(np.arange(5, dtype=np.int64), dtype="uint8").asnumpy().tolist() == [
        0, 1, 2, 3, 4]


class AttrGuarded:
    """A kernel whose guard reads an attribute (softmax's axis)."""
    MXCORE_PLUGIN_API = hal.PLUGIN_API_VERSION

    @hal.hookimpl
    def register_kernels(self, register):
        register(hal.Kernel(op="softmax", device="cpu", fn=lambda x, axis, temperature: x,
                            name="last_axis_softmax", dtypes={"float16"}, priority=9,
                            applies=lambda shapes, dtypes, attrs: attrs["axis"] == -1))


def test_explain_gives_guards_the_ops_default_attributes(runtime_plugins, capsys):
    from mxcore.cli import main
    runtime_plugins(AttrGuarded(), "attr-guarded")
    assert main(["kernels", "explain", "softmax", "--dtype", "float16", "--shape", "2,3"]) == 0
    out = capsys.readouterr().out
    assert "winner: attr-guarded:last_axis_softmax" in out, out
    assert "guard raised" not in out
