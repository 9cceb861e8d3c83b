"""In-process unit tests of the kernel registry and its policy, with mock
kernels, plus the run-time plugin path (``PluginSystem.register_plugin``)."""
from __future__ import annotations

import numpy as np
import pytest

import hal
import mxcore as mx
from mxcore.base import NoKernelError, PluginError, UnknownOperatorError
from mxcore.op import Op
from mxcore.plugins import system
from mxcore.registry import DEFAULT_POLICY_PATH, Policy, Registry, _merge, qualified

F32 = {"float32"}


def fn_named(name):
    def fn(*arrays, **attrs):
        return name
    fn.__qualname__ = name
    return fn


def kernel(name, priority=0, device="cpu", op="myop", dtypes=F32, provider="prov",
           applies=None):
    return hal.Kernel(op=op, device=device, fn=fn_named(name), dtypes=dtypes,
                      priority=priority, applies=applies, name=name, provider=provider)


def make_registry(policy=None, *kernels, ops=("myop",)):
    reg = Registry(Policy(policy or {}, ["<test>"]))
    for name in ops:
        reg.add_op(Op(name, 2), "test-ops")
    for k in kernels:
        reg.add_kernel(k)
    return reg


def winner(text):
    return next(ln for ln in text.splitlines() if ln.startswith("winner:"))


# --------------------------------------------------------------------------------------
# priorities
# --------------------------------------------------------------------------------------


def test_highest_priority_wins_and_candidates_are_ordered():
    reg = make_registry(None, kernel("low", -1), kernel("mid", 0), kernel("high", 5))
    assert reg.resolve("myop", "cpu", "float32").name == "high"
    assert reg.resolve("myop", "cpu", "float32").fn() == "high"
    assert [c.kernel.name for c in reg.candidates("myop", "cpu", "float32")] == [
        "high", "mid", "low"]
    assert all(c.rejected == "" for c in reg.candidates("myop", "cpu", "float32"))


def test_dtype_selects_among_kernels():
    reg = make_registry(None, kernel("f32", 0, dtypes={"float32"}),
                        kernel("f64", 9, dtypes={"float64"}),
                        kernel("ints", 3, dtypes={"int32", "int64"}))
    assert reg.resolve("myop", "cpu", "float32").name == "f32"
    assert reg.resolve("myop", "cpu", "float64").name == "f64"
    assert reg.resolve("myop", "cpu", "int64").name == "ints"
    rejected = {c.kernel.name: c.rejected for c in reg.candidates("myop", "cpu", "float32")}
    assert rejected == {"f32": "", "f64": "does not take float32", "ints": "does not take float32"}


def test_equal_priority_is_an_error_at_registration():
    reg = make_registry(None, kernel("first", 3, provider="p1"))
    with pytest.raises(PluginError) as info:
        reg.add_kernel(kernel("second", 3, provider="p2", dtypes={"float32", "float64"}))
    msg = str(info.value)
    assert "p1:first" in msg and "p2:second" in msg
    assert "'myop' on 'cpu'" in msg and "['float32']" in msg and "priority 3" in msg
    # the rejected kernel was not added
    assert [k.name for k in reg.kernels[("myop", "cpu")]] == ["first"]
    # equal priorities are fine when dtypes do not overlap, or on another device / op
    reg.add_kernel(kernel("f64", 3, dtypes={"float64"}))
    reg.add_kernel(kernel("other_device", 3, device="edge"))
    reg.add_op(Op("otherop", 1), "test-ops")
    reg.add_kernel(kernel("other_op", 3, op="otherop"))
    assert reg.resolve("myop", "cpu", "float64").name == "f64"
    # check_kernel also checks against pending (not yet committed) kernels
    with pytest.raises(PluginError, match="both implement"):
        reg.check_kernel(kernel("x", 8), [kernel("y", 8)])


def test_add_kernel_rejects_non_kernels():
    reg = make_registry()
    with pytest.raises(PluginError, match="is not a hal.Kernel"):
        reg.add_kernel(object())


# --------------------------------------------------------------------------------------
# policy: deny, prefer, fallback
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("level", ["op", "device", "global"])
def test_deny_by_provider_or_qualified_name(level):
    def policy(names):
        return {"op": {"ops": {"myop": {"cpu": {"deny": names}}}},
                "device": {"devices": {"cpu": {"deny": names}}},
                "global": {"global": {"deny": names}}}[level]

    ks = (kernel("a", 9, provider="pa"), kernel("b", 5, provider="pb"),
          kernel("c", 1, provider="pc"))
    assert make_registry(policy([]), *ks).resolve("myop", "cpu", "float32").name == "a"
    assert make_registry(policy(["pa"]), *ks).resolve("myop", "cpu", "float32").name == "b"
    assert make_registry(policy(["pa:a", "pb"]), *ks).resolve("myop", "cpu", "float32").name == "c"
    # a qualified name only denies that kernel, not its provider's others
    assert make_registry(policy(["pa:zzz"]), *ks).resolve("myop", "cpu", "float32").name == "a"
    reg = make_registry(policy(["pa", "pb", "pc"]), *ks)
    cands = reg.candidates("myop", "cpu", "float32")
    assert {c.rejected for c in cands} == {"denied by policy"}
    with pytest.raises(NoKernelError):
        reg.resolve("myop", "cpu", "float32")


def test_prefer_beats_priority_and_op_level_comes_first():
    ks = (kernel("a", 0, provider="pa"), kernel("b", 5, provider="pb"),
          kernel("c", 9, provider="pc"))
    assert make_registry(None, *ks).resolve("myop", "cpu", "float32").name == "c"
    assert make_registry({"global": {"prefer": ["pa"]}}, *ks).resolve(
        "myop", "cpu", "float32").name == "a"
    assert make_registry({"devices": {"cpu": {"prefer": ["pb"]}}}, *ks).resolve(
        "myop", "cpu", "float32").name == "b"
    both = {"ops": {"myop": {"cpu": {"prefer": ["pa"]}}}, "devices": {"cpu": {"prefer": ["pb"]}}}
    reg = make_registry(both, *ks)
    assert reg.policy.preference("myop", "cpu") == ["pa", "pb"]
    assert [c.kernel.name for c in reg.candidates("myop", "cpu", "float32")] == ["a", "b", "c"]
    # the op-level list applies to its op and device kind only
    assert reg.policy.preference("otherop", "cpu") == ["pb"]
    assert reg.policy.preference("myop", "edge") == []
    # a qualified name prefers one kernel of a provider
    two = (kernel("fast", 9, provider="pa"), kernel("exact", 1, provider="pa"))
    reg = make_registry({"ops": {"myop": {"cpu": {"prefer": ["pa:exact"]}}}}, *two)
    assert reg.resolve("myop", "cpu", "float32").name == "exact"


def test_preferred_kernel_that_cannot_run_falls_through():
    ks = (kernel("pref", 0, provider="pa", dtypes={"float64"}), kernel("other", 1, provider="pb"))
    reg = make_registry({"global": {"prefer": ["pa"]}}, *ks)
    assert reg.resolve("myop", "cpu", "float32").name == "other"
    assert reg.resolve("myop", "cpu", "float64").name == "pref"


def test_fallback_chain():
    policy = {"devices": {"edge": {"fallback": ["cpu"]}}}
    reg = make_registry(policy, kernel("cpu_k", 5, device="cpu"))
    assert reg.chain("edge") == ["edge", "cpu"]
    assert reg.chain("cpu") == ["cpu"]
    # only the cpu kernel exists: edge borrows it
    cand = reg.candidates("myop", "edge", "float32")
    assert [(c.kernel.name, c.via) for c in cand] == [("cpu_k", "cpu")]
    assert reg.resolve("myop", "edge", "float32").name == "cpu_k"
    # a native kernel beats a fallback kernel whatever their priorities
    reg.add_kernel(kernel("edge_k", -5, device="edge"))
    assert reg.resolve("myop", "edge", "float32").name == "edge_k"
    assert reg.resolve("myop", "cpu", "float32").name == "cpu_k"
    assert "because it is native to edge (the runner-up is a fallback)" in winner(
        reg.explain("myop", "edge", "float32"))
    # a native kernel that cannot take the dtype lets the fallback serve it
    reg2 = make_registry(policy, kernel("cpu_k", 0), kernel("edge_k", 0, device="edge",
                                                              dtypes={"float16"}))
    assert reg2.resolve("myop", "edge", "float32").name == "cpu_k"
    assert reg2.resolve("myop", "edge", "float16").name == "edge_k"
    # without a fallback entry the device has no kernel
    with pytest.raises(NoKernelError, match="operator 'myop' has no kernel for device kind 'edge'"):
        make_registry(None, kernel("cpu_k")).resolve("myop", "edge", "float32")


def test_fallback_chain_is_transitive_and_cycle_safe():
    policy = {"devices": {"edge": {"fallback": ["mid", "cpu"]},
                          "mid": {"fallback": ["cpu", "edge"]},
                          "cpu": {"fallback": ["edge"]}}}
    reg = make_registry(policy, kernel("cpu_k", 9), kernel("mid_k", 0, device="mid"))
    assert reg.chain("edge") == ["edge", "mid", "cpu"]
    assert reg.chain("cpu") == ["cpu", "edge", "mid"]
    assert reg.resolve("myop", "edge", "float32").name == "mid_k"
    assert reg.resolve("myop", "cpu", "float32").name == "cpu_k"


# --------------------------------------------------------------------------------------
# guards
# --------------------------------------------------------------------------------------


def test_guard_declines_and_accepts():
    seen = []

    def big(shapes, dtypes, attrs):
        seen.append((shapes, dtypes, attrs))
        return all(int(np.prod(s)) >= 100 for s in shapes)

    reg = make_registry(None, kernel("plain", 0), kernel("big", 10, applies=big))
    assert reg.has_guards("myop", "cpu")
    small = reg.candidates("myop", "cpu", "float32", ((2, 3), (2, 3)), ("float32",) * 2, {"k": 1})
    assert [(c.kernel.name, c.rejected) for c in small] == [
        ("plain", ""), ("big", "guard declined")]
    assert seen[-1] == (((2, 3), (2, 3)), ("float32", "float32"), {"k": 1})
    # a lookup by shapes alone (mxcore kernels explain) still gives guards dtypes and attrs
    reg.candidates("myop", "cpu", "float32", ((2, 3), (2, 3)))
    assert seen[-1] == (((2, 3), (2, 3)), ("float32", "float32"), {})
    assert reg.resolve("myop", "cpu", "float32", ((2, 3),), ("float32",), {}).name == "plain"
    assert reg.resolve("myop", "cpu", "float32", ((20, 30),), ("float32",), {}).name == "big"
    text = reg.explain("myop", "cpu", "float32", ((2, 3),), ("float32",), {})
    assert "REJECTED: guard declined" in text
    assert winner(text) == "winner: prov:plain because it is the only kernel that accepts this call"


def test_guard_that_raises_is_a_decline_not_a_crash():
    def broken(shapes, dtypes, attrs):
        raise ZeroDivisionError("oops")

    reg = make_registry(None, kernel("plain", 0), kernel("broken", 10, applies=broken))
    cands = reg.candidates("myop", "cpu", "float32", ((2,),), ("float32",), {})
    assert cands[0].kernel.name == "plain"
    assert cands[1].rejected == "guard raised ZeroDivisionError('oops')"
    assert reg.resolve("myop", "cpu", "float32", ((2,),), ("float32",), {}).name == "plain"


def test_has_guards_is_false_without_guards():
    reg = make_registry({"devices": {"edge": {"fallback": ["cpu"]}}}, kernel("plain", 0))
    assert not reg.has_guards("myop", "cpu")
    reg.add_kernel(kernel("guarded", 1, applies=lambda *a: True))
    assert reg.has_guards("myop", "edge")  # through the fallback chain


# --------------------------------------------------------------------------------------
# errors and explain
# --------------------------------------------------------------------------------------


def test_no_kernel_error_names_op_device_and_dtype():
    reg = make_registry(None, kernel("k", 0, dtypes={"float32", "float64"}))
    with pytest.raises(NoKernelError) as info:
        reg.resolve("myop", "cpu", "int8")
    assert str(info.value) == ("operator 'myop' has no kernel on 'cpu' for dtype int8 "
                               "(kernels exist for: float32, float64; "
                               "rejected: prov:k: does not take int8)")
    assert isinstance(info.value, NotImplementedError)
    with pytest.raises(NoKernelError) as info:
        reg.resolve("myop", "quantum", "float32")
    assert str(info.value).startswith("operator 'myop' has no kernel for device kind "
                                      "'quantum' (searched: quantum; kernels exist for: cpu)")
    assert "[devices.quantum] fallback" in str(info.value)


def test_explain_text():
    reg = make_registry({"devices": {"cpu": {"prefer": ["pb"]}}},
                        kernel("a", 7, provider="pa"), kernel("b", 1, provider="pb"),
                        kernel("c", 3, provider="pc", dtypes={"float64"}))
    text = reg.explain("myop", "cpu", "float32", ((2, 3), (3, 4)))
    lines = text.splitlines()
    assert lines[0] == "op myop on cpu, dtype float32, shapes ((2, 3), (3, 4))"
    assert lines[1] == "fallback chain: cpu; preferred providers: pb"
    assert lines[2] == "policy files: <test>"
    assert lines[3].startswith(" * pb:b") and "priority    1" in lines[3]
    assert "preference #1" in lines[3] and "via cpu" in lines[3]
    assert lines[4].startswith("   pa:a") and "not preferred" in lines[4]
    assert lines[5].startswith(" x pc:c") and lines[5].endswith("REJECTED: does not take float32")
    assert lines[6] == "winner: pb:b because its provider is preferred by policy"

    reg = make_registry(None, kernel("a", 7), kernel("b", 1))
    assert winner(reg.explain("myop", "cpu", "float32")) == (
        "winner: prov:a because it has the highest priority (7 > 1)")
    reg = make_registry(None, kernel("a", 7))
    assert winner(reg.explain("myop", "cpu", "float32")) == (
        "winner: prov:a because it is the only kernel that accepts this call")
    text = reg.explain("myop", "cpu", "int8")
    assert text.splitlines()[-1] == "no kernel can run this call"
    assert "winner:" not in text
    with pytest.raises(UnknownOperatorError, match="unknown operator 'nosuchop'"):
        reg.explain("nosuchop", "cpu", "float32")


def test_qualified_name():
    assert qualified(kernel("k", provider="mxcore-x")) == "mxcore-x:k"
    # a kernel without an explicit name is named after its function
    k = hal.Kernel(op="myop", device="cpu", fn=np.add, dtypes=F32)
    assert k.name == "add" and isinstance(k.dtypes, frozenset)


def test_duplicate_device_and_op_registration_is_an_error():
    class Dev(hal.DeviceType):
        kind = "edge"

    reg = make_registry()
    reg.add_device(Dev(), "p1")
    with pytest.raises(PluginError,
                       match="device kind 'edge' is registered twice .by 'p1' and 'p2'"):
        reg.add_device(Dev(), "p2")
    with pytest.raises(PluginError, match="not a hal.DeviceType"):
        reg.add_device(object(), "p3")
    with pytest.raises(PluginError, match="operator 'myop' is registered twice"):
        reg.add_op(Op("myop", 1), "p2")
    with pytest.raises(UnknownOperatorError):
        reg.op("nosuchop")
    with pytest.raises(hal.DeviceUnavailableError, match="no plugin provides device kind 'nope'"):
        reg.device_type("nope")


def test_remove_provider_drops_its_registrations_and_caches():
    class Dev(hal.DeviceType):
        kind = "edge"

    reg = make_registry(None, kernel("a", 1, provider="pa"), kernel("b", 0, provider="pb"))
    reg.add_device(Dev(), "pa")
    op = reg.op("myop")
    op.cache[("cpu", "float32")] = "stale"
    reg.remove_provider("pa")
    assert "edge" not in reg.devices
    assert [k.name for k in reg.kernels[("myop", "cpu")]] == ["b"]
    assert op.cache == {}
    reg.remove_provider("pb")
    assert ("myop", "cpu") not in reg.kernels


# --------------------------------------------------------------------------------------
# policy files
# --------------------------------------------------------------------------------------


def test_default_policy_file(monkeypatch):
    monkeypatch.delenv("MXCORE_REGISTRY", raising=False)
    policy = Policy.load()
    assert policy.sources[0] == str(DEFAULT_POLICY_PATH)
    assert policy.fallback("arm") == ["cpu"]
    assert policy.fallback("cpu") == []


def test_user_policy_is_merged_over_the_default(tmp_path, monkeypatch):
    user = tmp_path / "mine.toml"
    user.write_text('[devices.arm]\nfallback = []\n\n[ops.add.cpu]\nprefer = ["x"]\n'
                    'deny = ["y:z"]\n\n[devices.edge]\nfallback = ["cpu"]\n')
    monkeypatch.setenv("MXCORE_REGISTRY", str(user))
    policy = Policy.load()
    assert policy.sources == [str(DEFAULT_POLICY_PATH), str(user)]
    assert policy.fallback("arm") == []          # lists are replaced, not appended
    assert policy.fallback("edge") == ["cpu"]
    assert policy.preference("add", "cpu")[0] == "x"
    assert policy.denied("add", "cpu") == ["y:z"]
    assert Registry(policy).chain("edge") == ["edge", "cpu"]
    # an explicit path wins over the environment
    other = tmp_path / "other.toml"
    other.write_text("[devices.edge]\nfallback = [\"arm\"]\n")
    assert Policy.load(str(other)).fallback("edge") == ["arm"]


def test_unreadable_policy_file_is_a_clear_error(tmp_path):
    with pytest.raises(PluginError, match="cannot read kernel policy file .*missing.toml"):
        Policy.load(str(tmp_path / "missing.toml"))
    bad = tmp_path / "bad.toml"
    bad.write_text("[devices.cpu\n")
    with pytest.raises(PluginError, match="cannot read kernel policy file .*bad.toml"):
        Policy.load(str(bad))


def test_merge_is_recursive():
    assert _merge({"a": {"b": 1, "c": [1]}, "d": 2}, {"a": {"c": [2]}, "e": 3}) == {
        "a": {"b": 1, "c": [2]}, "d": 2, "e": 3}


# --------------------------------------------------------------------------------------
# run-time plugins: PluginSystem.register_plugin / unregister_plugin
# --------------------------------------------------------------------------------------


class MockDevice(hal.DeviceType):
    kind = "mockdev"
    description = "mock device on host memory"


class MockPlugin:
    """A plugin object (not a module) with hookimpl-decorated methods."""

    MXCORE_PLUGIN_API = hal.PLUGIN_API_VERSION

    def __init__(self):
        self.calls = 0

    def add(self, a, b):
        self.calls += 1
        return np.add(a, b) * 10          # visibly not the CPU kernel

    @hal.hookimpl
    def register_devices(self, register):
        register(MockDevice())

    @hal.hookimpl
    def register_kernels(self, register):
        register(hal.Kernel(op="add", device="cpu", fn=self.add, name="mock_add",
                            dtypes=F32, priority=10))
        register(hal.Kernel(op="add", device="mockdev", fn=self.add, name="mock_add_dev",
                            dtypes=F32))


MOCK = "mock-plugin"




def _ones_sum():
    return (mx.nd.ones((2, 3)) + mx.nd.ones((2, 3))).asnumpy()


def test_mock_plugin_kernel_runs_and_is_removed_again(runtime_plugins):
    s = system()
    reg = s.registry
    original_policy = reg.policy
    assert (_ones_sum() == 2).all()                      # fills the add op's cache
    add_op = reg.op("add")
    assert add_op.cache, "eager dispatch should cache the resolution"
    before = {key: list(ks) for key, ks in reg.kernels.items()}

    plugin = MockPlugin()
    info = runtime_plugins(plugin, MOCK, prefer={"ops": {"add": {"cpu": {"prefer": [MOCK]}}}})
    assert info.error is None, info.error
    assert info.hooks == ["register_devices", "register_kernels"]
    assert info.devices == ["mockdev"] and info.kernels == 2
    assert s.plugins[MOCK] is info
    assert reg.device_providers["mockdev"] == MOCK
    assert reg.resolve("add", "cpu", "float32").name == "mock_add"
    assert winner(reg.explain("add", "cpu", "float32")) == (
        f"winner: {MOCK}:mock_add because its provider is preferred by policy")

    # mx.nd sees the new kernel: the registration cleared the cached resolution
    assert (_ones_sum() == 20).all()
    assert plugin.calls == 1
    x = mx.nd.array([[1.0, 2.0]], ctx=mx.device("mockdev"))
    y = x + x
    assert str(y.context) == "mockdev:0" and y.asnumpy().tolist() == [[20.0, 40.0]]
    assert plugin.calls == 2
    # other ops are untouched
    assert (mx.nd.ones((2, 3)) * 3).asnumpy().tolist() == [[3.0] * 3] * 2

    # unregistering restores the built-in kernel at once
    s.unregister_plugin(MOCK)
    assert MOCK not in s.plugins and s.pm.get_plugin(MOCK) is None
    assert "mockdev" not in reg.devices
    assert {key: list(ks) for key, ks in reg.kernels.items()} == before
    reg.policy = original_policy  # (the fixture would restore it at teardown too)
    reg.invalidate()
    assert (_ones_sum() == 2).all()
    assert plugin.calls == 2
    with pytest.raises(hal.DeviceUnavailableError):
        mx.nd.array([1.0], ctx=mx.device("mockdev"))
    mx.nd.waitall()  # waits for the devices still registered; the used mockdev is gone


def test_mock_plugin_priority_under_the_default_policy(runtime_plugins):
    """The shipped policy prefers mxcore-cpu on the CPU: a higher priority alone
    does not displace it (see tests/no_device/test_third_party_plugin.py)."""
    plugin = MockPlugin()
    info = runtime_plugins(plugin, MOCK)
    assert info.error is None
    reg = system().registry
    expected = "mxcore-cpu" if "mxcore-cpu" in reg.policy.preference("add", "cpu") else MOCK
    assert reg.resolve("add", "cpu", "float32").provider == expected
    assert (_ones_sum() == (2 if expected == "mxcore-cpu" else 20)).all()


def test_mock_plugin_for_another_api_is_rejected(runtime_plugins):
    class Old(MockPlugin):
        MXCORE_PLUGIN_API = hal.PLUGIN_API_VERSION + 1

    info = runtime_plugins(Old(), MOCK)
    assert info.error == (f"plugin targets plugin API {hal.PLUGIN_API_VERSION + 1}; this mxcore "
                          f"speaks {hal.PLUGIN_API_VERSION} (set MXCORE_PLUGIN_API in the plugin "
                          "module)")
    assert system().pm.get_plugin(MOCK) is None
    assert "mockdev" not in system().registry.devices
    assert (_ones_sum() == 2).all()


def test_mock_plugin_without_api_marker_is_rejected(runtime_plugins):
    class NoMarker:
        @hal.hookimpl
        def register_devices(self, register):
            register(MockDevice())

    info = runtime_plugins(NoMarker(), MOCK)
    assert "plugin targets plugin API None" in info.error
    assert "mockdev" not in system().registry.devices


def test_mock_plugin_tie_is_rolled_back(runtime_plugins):
    class Tie(MockPlugin):
        @hal.hookimpl
        def register_kernels(self, register):
            register(hal.Kernel(op="negative", device="cpu", fn=np.negative, name="neg",
                                dtypes=F32, priority=4))
            register(hal.Kernel(op="add", device="cpu", fn=np.add, name="tie_add",
                                dtypes={"float32", "int8"}, priority=0))

    reg = system().registry
    before = {key: list(ks) for key, ks in reg.kernels.items()}
    info = runtime_plugins(Tie(), MOCK)
    assert info.error.startswith(
        "registration failed: PluginError: kernels mxcore-cpu:elemwise.add and "
        "mock-plugin:tie_add both implement 'add' on 'cpu' for ['float32', 'int8'] with "
        "priority 0"), info.error
    assert info.devices == [] and info.kernels == 0
    assert system().pm.get_plugin(MOCK) is None
    assert "mockdev" not in reg.devices
    assert {key: list(ks) for key, ks in reg.kernels.items()} == before
    assert (-mx.nd.ones((2,))).asnumpy().tolist() == [-1.0, -1.0]


def test_mock_plugin_registering_a_non_kernel_is_rolled_back(runtime_plugins):
    class Bad(MockPlugin):
        @hal.hookimpl
        def register_kernels(self, register):
            register("not a kernel")

    info = runtime_plugins(Bad(), MOCK)
    assert "register_kernels expects hal.Kernel, got 'not a kernel'" in info.error
    assert "mockdev" not in system().registry.devices


def test_mock_plugin_registering_an_existing_device_kind_is_rolled_back(runtime_plugins):
    class CpuAgain(hal.DeviceType):
        kind = "cpu"

    class Dup(MockPlugin):
        @hal.hookimpl
        def register_devices(self, register):
            register(MockDevice())
            register(CpuAgain())

    reg = system().registry
    cpu_type = reg.devices["cpu"]
    info = runtime_plugins(Dup(), MOCK)
    assert "device kind 'cpu' is registered twice (by 'mxcore-cpu' and 'mock-plugin')" in info.error
    assert reg.devices["cpu"] is cpu_type
    assert "mockdev" not in reg.devices
    assert (_ones_sum() == 2).all()


def test_registering_a_taken_plugin_name_keeps_the_original(runtime_plugins):
    s = system()
    original = s.plugins["cpu"]
    with pytest.raises(PluginError, match="'cpu' is already registered"):
        s.register_plugin(MockPlugin(), "cpu")
    assert s.plugins["cpu"] is original and original.error is None
    assert "mockdev" not in s.registry.devices


def test_mock_plugin_op_is_gone_after_unregistering(runtime_plugins):
    """An operator plugin: its op runs through eager dispatch while registered,
    and is refused (not served from a stale cache) once unregistered."""
    from mxcore.dispatch import invoke
    from mxcore.ops.rules import same_as_first

    triple = Op("mock_triple", 1)
    triple.def_infer(same_as_first)

    class OpPlugin:
        MXCORE_PLUGIN_API = hal.PLUGIN_API_VERSION

        @hal.hookimpl
        def register_ops(self, register):
            register(triple)

        @hal.hookimpl
        def register_kernels(self, register):
            register(hal.Kernel(op="mock_triple", device="cpu", fn=lambda x: x * 3,
                                name="triple", dtypes=F32))

    info = runtime_plugins(OpPlugin(), MOCK)
    assert info.error is None and info.ops == 1 and info.kernels == 1
    assert system().registry.op("mock_triple") is triple and triple.provider == MOCK
    x = mx.nd.array([1.0, 2.0])
    assert invoke(triple, [x]).asnumpy().tolist() == [3.0, 6.0]
    system().unregister_plugin(MOCK)
    with pytest.raises(UnknownOperatorError):
        system().registry.op("mock_triple")
    with pytest.raises(UnknownOperatorError, match="'mock_triple' is not registered"):
        invoke(triple, [x])


def test_policy_sections_may_use_op_aliases():
    reg = Registry(Policy({"ops": {"plus": {"cpu": {"deny": ["prov:fast"]}}}}, ["<test>"]))
    reg.add_op(Op("myop", 2, aliases=("plus",)), "test-ops")
    reg.add_kernel(kernel("fast", 5))
    reg.add_kernel(kernel("slow", 0))
    assert reg.resolve("myop", "cpu", "float32").name == "slow"


def test_rejections_are_explained_in_no_kernel_errors_and_explain():
    reg = make_registry({"global": {"deny": ["prov:a"]}}, kernel("a", 1),
                        kernel("b", 0, applies=lambda shapes, dtypes, attrs: False))
    with pytest.raises(NoKernelError, match="prov:a: denied by policy; prov:b: guard declined"):
        reg.resolve("myop", "cpu", "float32", ((2,),), ("float32",), {})
    assert "guard not evaluated" in reg.explain("myop", "cpu", "float32")


def test_unknown_engine_in_environment_falls_back_with_a_warning(monkeypatch):
    from mxcore import engine
    monkeypatch.setenv("MXCORE_ENGINE", "warp-drive")
    with pytest.warns(RuntimeWarning, match="warp-drive"):
        assert engine.create().name == "naive"
    with pytest.raises(ValueError, match="unknown engine"):
        engine.create("warp-drive")


def test_source_checkout_without_entry_points_finds_builtin_plugins(monkeypatch):
    """On PYTHONPATH without installation there are no entry points: the
    built-in plugins are still found by module, under their distribution names."""
    import mxcore.plugins as plugins_mod
    monkeypatch.setattr(plugins_mod, "entry_points", lambda group: [])
    monkeypatch.setitem(plugins_mod.BUILTIN_MODULES, "absent",
                        ("mxcore_absent.plugin", "mxcore-absent"))
    s = plugins_mod.PluginSystem()
    s.load_entry_points()
    assert s.plugins["core"].version == "(not installed)" and s.plugins["core"].error is None
    assert s.plugins["cpu"].distribution == "mxcore-cpu" and "cpu" in s.registry.devices
    assert "absent" not in s.plugins  # not on the path: not reported at all
    k = s.registry.resolve("add", "cpu", "float32")
    assert k.provider == "mxcore-cpu"
    monkeypatch.setenv("MXCORE_PLUGINS", "core")
    s2 = plugins_mod.PluginSystem()
    s2.load_entry_points()
    assert s2.plugins["cpu"].skipped and "cpu" not in s2.registry.devices


def test_autotune_picks_the_fastest_and_remembers(tmp_path, monkeypatch):
    import time as _time
    from mxcore import autotune
    calls = {"slow": 0, "fast": 0}

    def slow(a, b):
        calls["slow"] += 1
        _time.sleep(0.002)
        return a + b

    def fast(a, b):
        calls["fast"] += 1
        return a + b

    def broken(a, b):
        raise RuntimeError("cannot")

    cache = tmp_path / "tune.json"
    monkeypatch.setenv("MXCORE_AUTOTUNE", "1")
    monkeypatch.setenv("MXCORE_AUTOTUNE_CACHE", str(cache))

    def registry_with_kernels():
        reg = make_registry(None, hal.Kernel(op="myop", device="cpu", fn=slow, dtypes=F32,
                                             priority=5, name="slow", provider="prov"),
                            hal.Kernel(op="myop", device="cpu", fn=fast, dtypes=F32,
                                       priority=1, name="fast", provider="prov"),
                            hal.Kernel(op="myop", device="cpu", fn=broken, dtypes=F32,
                                       priority=9, name="broken", provider="prov"))
        from mxcore_cpu.device import CPUDevice
        reg.add_device(CPUDevice(), "mxcore-cpu")
        return reg

    reg = registry_with_kernels()
    assert reg.autotuner is not None and reg.has_guards("myop", "cpu")
    k = reg.resolve("myop", "cpu", "float32", ((64, 64), (64, 64)), ("float32", "float32"), {})
    assert k.name == "fast" and calls["slow"] >= 2
    saved = __import__("json").loads(cache.read_text())
    (entry,) = saved.values()
    assert entry["winner"] == "prov:fast" and entry["seconds"]["prov:broken"].startswith("failed")
    assert "autotune chose prov:fast" in reg.explain("myop", "cpu", "float32",
                                                      ((64, 64), (64, 64)),
                                                      ("float32", "float32"), {})
    before = dict(calls)
    reg2 = registry_with_kernels()     # a new process reads the cache: no timing
    assert reg2.resolve("myop", "cpu", "float32", ((64, 64), (64, 64)),
                        ("float32", "float32"), {}).name == "fast"
    assert calls == before
    # without shapes (or with autotune off) priority decides as usual
    assert reg2.resolve("myop", "cpu", "float32").name == "broken"
    monkeypatch.delenv("MXCORE_AUTOTUNE")
    assert not autotune.enabled() and make_registry(None).autotuner is None


def test_autotune_does_not_retime_for_volatile_attributes(tmp_path, monkeypatch):
    """A new learning rate is not a new signature: timed once, then remembered."""
    calls = {"a": 0, "b": 0}

    def kernel(name):
        def fn(x, lr):
            calls[name] += 1
            return x * lr
        return fn

    monkeypatch.setenv("MXCORE_AUTOTUNE", "1")
    monkeypatch.setenv("MXCORE_AUTOTUNE_CACHE", str(tmp_path / "tune.json"))
    reg = make_registry(None, ops=())
    reg.add_op(Op("scaled", 1, attrs={"lr": 0.0}, volatile_attrs=("lr",)), "test-ops")
    for name, prio in (("a", 1), ("b", 2)):
        reg.add_kernel(hal.Kernel(op="scaled", device="cpu", fn=kernel(name), dtypes=F32,
                                  priority=prio, name=name, provider="prov"))
    from mxcore_cpu.device import CPUDevice
    reg.add_device(CPUDevice(), "mxcore-cpu")
    first = reg.resolve("scaled", "cpu", "float32", ((8,),), ("float32",), {"lr": 0.1}).name
    timed = dict(calls)
    assert timed["a"] >= 1 and timed["b"] >= 1
    for lr in (0.2, 0.3, 0.05):
        assert reg.resolve("scaled", "cpu", "float32", ((8,),), ("float32",),
                           {"lr": lr}).name == first
    assert calls == timed
    assert len(__import__("json").loads((tmp_path / "tune.json").read_text())) == 1


class GuardedScalarPlugin:
    """A guarded mul_scalar kernel on the CPU that counts its guard's calls."""

    MXCORE_PLUGIN_API = hal.PLUGIN_API_VERSION

    def __init__(self):
        self.guard_calls = 0

    def applies(self, shapes, dtypes, attrs):
        self.guard_calls += 1
        return True

    @hal.hookimpl
    def register_kernels(self, register):
        register(hal.Kernel(op="mul_scalar", device="cpu", name="guarded_mul_scalar",
                            fn=lambda x, scalar: x * x.dtype.type(scalar), dtypes=F32,
                            priority=10, applies=self.applies))


def test_volatile_attributes_do_not_make_new_signatures(runtime_plugins):
    """A new scalar (or learning rate, or seed) is not a new signature: the guarded
    choice made for the first call serves the next ones without asking the guards
    again; a new shape does ask."""
    plugin = GuardedScalarPlugin()
    info = runtime_plugins(plugin, "guarded-scalar",
                           prefer={"ops": {"mul_scalar": {"cpu": {"prefer": ["guarded-scalar"]}}}})
    assert info.error is None, info.error
    assert "scalar" in system().registry.op("mul_scalar").volatile_attrs
    x = mx.nd.ones((2, 3))
    for s in (0.5, 0.7, 0.9, 1.5):
        np.testing.assert_allclose((x * s).asnumpy(), np.full((2, 3), s), rtol=1e-6)
    assert plugin.guard_calls == 1
    mx.nd.ones((4,)) * 0.5
    assert plugin.guard_calls == 2
