"""MXNet 1.x binary NDArray files (mxcore.mxnet_params): the fixtures in
tests/data/mxnet_params/ were written by MXNet 1.9.1 (tools/make_mxnet_params_fixtures.py),
each beside a ``.npz`` holding the values MXNet reads back from it."""
from __future__ import annotations

import os
import struct

import numpy as np
import pytest

import mxcore as mx
from mxcore import cli, mxnet_params
from mxcore.base import MXCoreError
from mxcore.mxnet_params import MXNetParamsError
from mxcore.serialization import load_arrays, load_parameter_arrays, save_arrays

DATA = os.path.join(os.path.dirname(__file__), os.pardir, "data", "mxnet_params")
DENSE = ["dtypes_dict", "list", "np_shape", "gluon_net", "gluon_net-0000"]
SPARSE = {"row_sparse": "row_sparse", "csr": "csr"}


def fixture(name: str, ext: str = ".params") -> str:
    return os.path.normpath(os.path.join(DATA, name + ext))


def expected(name: str):
    """(container, {name: array}) that MXNet read back from the fixture."""
    with np.load(fixture(name, ".npz"), allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files if k != "__container__"}
        return str(z["__container__"]), arrays


def assert_same(got: np.ndarray, want: np.ndarray, what: str) -> None:
    """Same dtype, shape and bits (NaN and -0.0 included)."""
    assert got.dtype == want.dtype, f"{what}: dtype {got.dtype} != {want.dtype}"
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    assert np.ascontiguousarray(got).tobytes() == np.ascontiguousarray(want).tobytes(), what


# --- every fixture, exactly -----------------------------------------------------------------

@pytest.mark.parametrize("name", DENSE)
def test_read_gives_exactly_what_mxnet_saved(name):
    container, want = expected(name)
    got = mxnet_params.load(fixture(name))
    if container == "list":
        assert isinstance(got, list) and len(got) == len(want)
        got = {str(i): a for i, a in enumerate(got)}
    else:
        assert isinstance(got, dict)
        assert list(got) == list(want)  # the saved order
    for key, value in want.items():
        assert_same(got[key], value, f"{name}:{key}")


@pytest.mark.parametrize("name", DENSE)
def test_nd_load_reads_mxnet_files(name):
    container, want = expected(name)
    got = mx.nd.load(fixture(name))
    if container == "list":
        assert isinstance(got, list)
        got = {str(i): a for i, a in enumerate(got)}
    assert sorted(got) == sorted(want)
    for key, value in want.items():
        assert isinstance(got[key], mx.nd.NDArray)
        assert_same(got[key].asnumpy(), value, f"{name}:{key}")


def test_the_fixtures_cover_every_dtype_and_both_header_versions():
    dtypes = {a.dtype.name for n in DENSE for a in expected(n)[1].values()}
    assert {"float16", "float32", "float64", "int8", "uint8", "int32", "int64",
            "bool"} <= dtypes
    assert mxnet_params.read(fixture("dtypes_dict")).versions == ("V2",)
    np_shape = mxnet_params.read(fixture("np_shape"))
    assert np_shape.versions == ("V3",)
    shapes = dict(zip(np_shape.names, (a.shape for a in np_shape.arrays)))
    assert shapes == {"scalar": (), "empty": (0, 3), "vec": (2,)}
    assert mx.nd.load(fixture("np_shape"))["scalar"].shape == ()


def test_special_float_values_survive():
    f32 = mxnet_params.load(fixture("dtypes_dict"))["f32"]
    assert f32[0] == 1.5 and np.isposinf(f32[1]) and np.isnan(f32[2])
    i64 = mxnet_params.load(fixture("dtypes_dict"))["i64"]
    assert i64.tolist() == [-(2 ** 62), 2 ** 40 + 3]


def test_load_arrays_names_a_list_file_by_position():
    arrays, meta = load_arrays(fixture("list"))
    assert list(arrays) == ["0", "1", "2"]
    assert meta == {"format": "mxnet-ndarrays", "container": "list", "versions": "V2"}


def test_block_load_parameters_reads_save_parameters_files():
    net = mx.gluon.nn.HybridSequential()
    net.add(mx.gluon.nn.Dense(3, in_units=2), mx.gluon.nn.BatchNorm(in_channels=3))
    net.initialize()
    net.load_parameters(fixture("gluon_net"))
    _, want = expected("gluon_net")
    params = net._collect_params_with_prefix()
    for key, value in want.items():
        assert_same(params[key].data().asnumpy(), value, key)


def test_parameter_arrays_lose_the_export_prefixes():
    arrays = load_parameter_arrays(fixture("gluon_net-0000"))
    _, want = expected("gluon_net-0000")
    assert sorted(arrays) == sorted(k[4:] for k in want)
    assert_same(arrays["batchnorm0_running_var"], want["aux:batchnorm0_running_var"], "var")


def test_prefixes_that_collide_are_refused(tmp_path):
    path = tmp_path / "twice.params"
    mxnet_params.save(path, {"arg:w": np.zeros(2, np.float32), "aux:w": np.ones(2, np.float32)})
    with pytest.raises(MXNetParamsError, match="'aux:w'.*'w'"):
        load_parameter_arrays(path)


# --- refused files ---------------------------------------------------------------------------

@pytest.mark.parametrize("name,kind", sorted(SPARSE.items()))
def test_sparse_arrays_are_refused_by_name(name, kind):
    with pytest.raises(MXNetParamsError, match=rf"{name}\.params.*array 0 of 1: a {kind} "):
        mx.nd.load(fixture(name))


def test_every_truncation_is_refused_naming_the_file(tmp_path):
    whole = open(fixture("dtypes_dict"), "rb").read()
    path = tmp_path / "cut.params"
    for size in range(len(whole)):
        path.write_bytes(whole[:size])
        with pytest.raises(MXNetParamsError, match=r"cut\.params.*truncated") as info:
            mxnet_params.read(path)
        assert f"of {size})" in str(info.value)


@pytest.mark.parametrize("size", [16, 40, 100, 579])
def test_nd_load_of_a_truncated_file_names_what_was_cut(tmp_path, size):
    path = tmp_path / "cut.params"
    path.write_bytes(open(fixture("dtypes_dict"), "rb").read()[:size])
    with pytest.raises(MXCoreError, match=r"cut\.params.*truncated"):
        mx.nd.load(str(path))


# byte offsets in list.params: 24 array magic, 28 storage type, 32 ndim, 36 dims (2 x i64),
# 52 device type, 56 device id, 60 dtype flag, 64 data (4 float32), 80 next array
def _patched(tmp_path, offset: int, fmt: str, value) -> str:
    raw = bytearray(open(fixture("list"), "rb").read())
    struct.pack_into(fmt, raw, offset, value)
    path = tmp_path / "bad.params"
    path.write_bytes(bytes(raw))
    return str(path)


@pytest.mark.parametrize("offset,fmt,value,message", [
    (0, "<Q", 0x113, r"starts with 0x113, 0x0"),
    (8, "<Q", 5, r"starts with 0x112, 0x5"),
    (16, "<Q", 2 ** 40, r"truncated: 1099511627776 arrays cannot fit in the 148 bytes"),
    (24, "<I", 0xF993FAC7, r"array 0 of 3: unknown array header magic 0xF993FAC7"),
    (28, "<i", 7, r"array 0 of 3: unknown storage type 7"),
    (32, "<i", 99, r"array 0 of 3: a shape of 99 dimensions"),
    (32, "<i", 0, r"array 0 of 3: an NDArray that holds no data"),
    (36, "<q", -3, r"array 0 of 3: shape \(-3, 2\) has a negative dimension"),
    (36, "<q", 2 ** 40, r"array 0 of 3: truncated: the data of a float32 array"),
    (52, "<i", 9, r"array 0 of 3: unknown device type 9"),
    (60, "<i", 13, r"array 0 of 3: unknown dtype flag 13"),
])
def test_corrupt_headers_are_refused_with_the_reason(tmp_path, offset, fmt, value, message):
    path = _patched(tmp_path, offset, fmt, value)
    with pytest.raises(MXNetParamsError, match=r"bad\.params.*" + message):
        mxnet_params.read(path)


def test_name_count_and_trailing_bytes_are_checked(tmp_path):
    raw = open(fixture("list"), "rb").read()
    path = tmp_path / "bad.params"
    path.write_bytes(raw[:-8] + struct.pack("<Q", 2))
    with pytest.raises(MXNetParamsError, match="the names: 2 names for 3 arrays"):
        mxnet_params.read(path)
    path.write_bytes(raw + b"\0\0\0")
    with pytest.raises(MXNetParamsError, match="the end: 3 bytes follow the last name"):
        mxnet_params.read(path)


def test_names_must_fit_and_be_utf8(tmp_path):
    raw = open(fixture("gluon_net"), "rb").read()
    first = raw.index(b"0.weight") - 8  # the u64 length before the first name
    path = tmp_path / "bad.params"
    path.write_bytes(raw[:first] + struct.pack("<Q", 2 ** 50) + raw[first + 8:])
    with pytest.raises(MXNetParamsError, match="name 0 of 6: truncated: a name of"):
        mxnet_params.read(path)
    path.write_bytes(raw.replace(b"0.weight", b"0.w\xffight"))
    with pytest.raises(MXNetParamsError, match="name 0 of 6: a name that is not UTF-8"):
        mxnet_params.read(path)


def test_a_safetensors_file_is_not_taken_for_an_mxnet_one(tmp_path):
    path = tmp_path / "a.safetensors"
    save_arrays(str(path), {"w": np.arange(3, dtype=np.float32)})
    assert not mxnet_params.is_mxnet_file(path)
    with pytest.raises(MXNetParamsError, match="where an MXNet NDArray file has 0x112, 0"):
        mxnet_params.read(path)
    # safetensors' first word is its header length, which may be 0x112; byte 8 is "{"
    path.write_bytes(struct.pack("<Q", 0x112) + b"{" + b" " * 0x111)
    assert not mxnet_params.is_mxnet_file(path)


def test_dtypes_mxcore_lacks_are_read_but_not_made_ndarrays(tmp_path):
    path = tmp_path / "i16.params"
    mxnet_params.save(path, {"x": np.array([-3, 4], np.int16)})
    assert mxnet_params.load(path)["x"].tolist() == [-3, 4]
    with pytest.raises(MXCoreError, match="'x' from .*i16.params: mxcore arrays have no dtype "
                                          "int16"):
        mx.nd.load(str(path))


# --- older headers, written here byte by byte from the format ------------------------------

def _file(*arrays: bytes, names=()) -> bytes:
    out = struct.pack("<QQQ", 0x112, 0, len(arrays)) + b"".join(arrays)
    out += struct.pack("<Q", len(names))
    for n in names:
        out += struct.pack("<Q", len(n)) + n.encode()
    return out


def test_v1_and_oldest_headers_are_read(tmp_path):
    v1 = struct.pack("<IIqq", 0xF993FAC8, 2, 2, 1) + struct.pack("<iii", 1, 0, 1) \
        + np.array([[1.5], [-2.0]], "<f8").tobytes()
    oldest = struct.pack("<III", 2, 1, 3) + struct.pack("<iii", 2, 0, 4) \
        + np.array([[7, 8, 9]], "<i4").tobytes()
    path = tmp_path / "old.params"
    path.write_bytes(_file(v1, oldest, names=("a", "b")))
    contents = mxnet_params.read(path)
    assert contents.versions == ("V1", "legacy")
    got = contents.as_container()
    assert_same(got["a"], np.array([[1.5], [-2.0]]), "V1")
    assert_same(got["b"], np.array([[7, 8, 9]], np.int32), "oldest")


def test_a_v2_scalar_means_no_data(tmp_path):
    # before NumPy shape semantics, rank 0 was MXNet's unknown shape: nothing follows it
    path = tmp_path / "none.params"
    path.write_bytes(_file(struct.pack("<Iii", 0xF993FAC9, 0, 0)))
    with pytest.raises(MXNetParamsError, match="array 0 of 1: an NDArray that holds no data"):
        mxnet_params.read(path)


# --- writing ---------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["dtypes_dict", "list", "np_shape"])
def test_save_writes_the_bytes_mxnet_wrote(tmp_path, name):
    path = tmp_path / "again.params"
    mxnet_params.save(path, mxnet_params.load(fixture(name)))
    assert path.read_bytes() == open(fixture(name), "rb").read()


def test_save_round_trips_bfloat16_and_refuses_v2_for_scalars(tmp_path):
    bf16 = np.array([1.5, -2.0], mx.nd.array([0], dtype="bfloat16").asnumpy().dtype)
    path = tmp_path / "b.params"
    mxnet_params.save(path, [bf16])
    assert_same(mxnet_params.load(path)[0], bf16, "bfloat16")
    with pytest.raises(MXNetParamsError, match="np_shape=True"):
        mxnet_params.save(path, [np.float32(1)], np_shape=False)
    assert_same(mxnet_params.load(path)[0], bf16, "the failed save left the file")


# --- mxcore convert-params -------------------------------------------------------------------

def _convert(capsys, *argv):
    rc = cli.main(["convert-params", *map(str, argv)])
    out, err = capsys.readouterr()
    return rc, out, err


def test_convert_params_strips_prefixes_and_loads_in_mxcore(tmp_path, capsys):
    out = tmp_path / "net.safetensors"
    rc, stdout, err = _convert(capsys, fixture("gluon_net-0000"), out)
    assert rc == 0 and err == ""
    assert "converted 6 named arrays, 84 bytes" in stdout and "headers V2" in stdout
    arrays, meta = load_arrays(str(out))
    assert meta["format"] == "mxcore-parameters" and meta["source"] == "mxnet-ndarrays V2"
    _, want = expected("gluon_net-0000")
    assert sorted(arrays) == sorted(k[4:] for k in want)
    for key, value in want.items():
        assert_same(arrays[key[4:]], value, key)
    net = mx.gluon.nn.HybridSequential()  # the names MXNet's export gave the parameters
    net.add(mx.gluon.nn.Dense(3, in_units=2, prefix="dense0_"),
            mx.gluon.nn.BatchNorm(in_channels=3, prefix="batchnorm0_"))
    net.initialize()
    net.load_parameters(str(out))  # keyed by the full parameter names
    assert_same(net[0].weight.data().asnumpy(), want["arg:dense0_weight"], "weight")


def test_convert_params_keeps_prefixes_and_lists_when_asked(tmp_path, capsys):
    out = tmp_path / "raw.safetensors"
    assert _convert(capsys, fixture("gluon_net-0000"), out, "--keep-prefixes")[0] == 0
    assert sorted(load_arrays(str(out))[0]) == sorted(expected("gluon_net-0000")[1])
    rc, stdout, _ = _convert(capsys, fixture("list"), out)
    assert rc == 0 and "3 arrays (a list)" in stdout
    got = mx.nd.load(str(out))
    assert isinstance(got, list)
    for i, value in expected("list")[1].items():
        assert_same(got[int(i)].asnumpy(), value, i)


def test_convert_params_round_trips_through_the_writer(tmp_path, capsys):
    src, out = tmp_path / "mine.params", tmp_path / "mine.safetensors"
    arrays = {"arg:a": np.arange(6, dtype=np.float64).reshape(2, 3), "s": np.float32(2.5),
              "e": np.zeros((0, 2), np.int8)}
    mxnet_params.save(src, arrays)
    assert _convert(capsys, src, out)[0] == 0
    back = mx.nd.load(str(out))
    assert sorted(back) == ["a", "e", "s"]
    assert_same(back["a"].asnumpy(), arrays["arg:a"], "a")
    assert_same(back["s"].asnumpy(), np.asarray(arrays["s"]), "s")
    assert_same(back["e"].asnumpy(), arrays["e"], "e")


@pytest.mark.parametrize("name,ext,message", [
    ("csr", ".params", "a csr (sparse) array"),
    ("list", ".npz", "where an MXNet NDArray file has 0x112, 0"),
])
def test_convert_params_refuses_bad_files_and_leaves_the_output(tmp_path, capsys, name, ext,
                                                                 message):
    out = tmp_path / "out.safetensors"
    out.write_bytes(b"previous")
    src = fixture(name, ext)
    rc, stdout, err = _convert(capsys, src, out)
    assert rc == cli.EXIT_USAGE and stdout == ""
    assert err.startswith("mxcore: error: cannot read ") and os.path.basename(src) in err
    assert message in err and err.count("\n") == 1
    assert out.read_bytes() == b"previous"
    assert sorted(os.listdir(tmp_path)) == ["out.safetensors"]  # no temporary left


def test_convert_params_missing_input_and_same_file(tmp_path, capsys):
    rc, _, err = _convert(capsys, tmp_path / "nope.params", tmp_path / "o.safetensors")
    assert rc == cli.EXIT_USAGE and "nope.params" in err
    same = tmp_path / "same.params"
    same.write_bytes(open(fixture("list"), "rb").read())
    rc, _, err = _convert(capsys, same, same)
    assert rc == cli.EXIT_USAGE and "is the input file" in err
    assert same.read_bytes() == open(fixture("list"), "rb").read()
