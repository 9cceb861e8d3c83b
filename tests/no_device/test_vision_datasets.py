"""gluon.data.vision: MNIST / Fashion-MNIST loading, checksums, downloads, transforms."""
from __future__ import annotations

import gzip
import io
import os
import pathlib
import urllib.error
import urllib.request

import numpy as np
import pytest

import mxcore as mx
from mxcore.gluon.data import DataLoader
from mxcore.gluon.data.vision import MNIST, FashionMNIST, datasets
from mxcore.gluon.data.vision import transforms as T
from mxcore.gluon.data.vision.datasets import DatasetChecksumError, DatasetDownloadError
from mxcore.ndarray.ndarray import NDArray

REPO_MNIST = pathlib.Path(__file__).resolve().parents[2] / "data" / "mnist"
FILES = ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
         "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]
FASHION_SYSTEM = pathlib.Path("/usr/share/datasets/fashion-mnist")


@pytest.fixture(scope="module")
def mnist_train():
    return MNIST(root=str(REPO_MNIST), train=True)


def _labels_from_file(name):
    with gzip.open(REPO_MNIST / name) as f:
        return np.frombuffer(f.read(), np.uint8, offset=8)


def test_mnist_train_and_test(mnist_train):
    ds = mnist_train
    assert len(ds) == 60000
    assert ds._data.shape == (60000, 28, 28, 1) and ds._data.dtype == np.uint8
    assert ds._label.shape == (60000,) and ds._label.dtype == np.int32
    img, label = ds[0]
    assert isinstance(img, NDArray) and img.shape == (28, 28, 1) and img.dtype == np.uint8
    assert img.context == mx.cpu()
    assert isinstance(label, np.int32)
    assert int(label) == int(_labels_from_file("train-labels-idx1-ubyte.gz")[0])
    counts = np.bincount(ds._label, minlength=10)
    assert counts.sum() == 60000 and len(counts) == 10 and (counts > 5000).all()
    assert ds._data.max() == 255 and ds._data.min() == 0
    test = MNIST(root=str(REPO_MNIST), train=False)
    assert len(test) == 10000 and test._data.shape == (10000, 28, 28, 1)
    assert 0 <= test._label.min() and test._label.max() == 9
    np.testing.assert_array_equal(test._label, _labels_from_file("t10k-labels-idx1-ubyte.gz"))


def test_mnist_transform_argument_and_loader(mnist_train):
    ds = MNIST(root=str(REPO_MNIST), train=False,
               transform=lambda d, lab: (d.astype("float32"), lab + 1))
    d, lab = ds[3]
    assert d.dtype == np.float32 and lab == int(ds._label[3]) + 1
    loader = DataLoader(mnist_train, batch_size=1000, shuffle=True)
    x, y = next(iter(loader))
    assert x.shape == (1000, 28, 28, 1) and x.dtype == np.uint8 and y.dtype == np.int32
    # the whole-array path and the item-by-item path agree
    t = T.Compose([T.ToTensor(), T.Normalize(0.1307, 0.3081)])
    small = mnist_train.take(50)
    fast = list(DataLoader(small.transform_first(t), batch_size=16))
    slow = list(DataLoader(small.transform_first(lambda v: t(v)), batch_size=16))
    for (a, b), (c, d) in zip(fast, slow):
        np.testing.assert_array_equal(a.asnumpy(), c.asnumpy())
        np.testing.assert_array_equal(b.asnumpy(), d.asnumpy())
    assert fast[0][0].shape == (16, 1, 28, 28) and fast[0][0].dtype == np.float32


def test_root_from_env_and_home(tmp_path, monkeypatch):
    (tmp_path / "data").mkdir()
    os.symlink(REPO_MNIST, tmp_path / "data" / "mnist")
    monkeypatch.setenv("MXCORE_DATA", str(tmp_path / "data"))
    ds = MNIST(train=False)
    assert len(ds) == 10000 and ds._root == str(tmp_path / "data" / "mnist")
    monkeypatch.delenv("MXCORE_DATA")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "home" / ".mxcore" / "datasets").mkdir(parents=True)
    os.symlink(REPO_MNIST, tmp_path / "home" / ".mxcore" / "datasets" / "mnist")
    assert len(MNIST(train=False)) == 10000


class _FakeURLs:
    """Stands in for urllib.request.urlopen: serves bytes per file name, counts calls."""

    def __init__(self, content):
        self.content = content
        self.calls = []

    def __call__(self, url, timeout=None):
        self.calls.append(url)
        name = url.rsplit("/", 1)[-1]
        body = self.content(name, url)
        if isinstance(body, Exception):
            raise body
        return io.BytesIO(body)


def test_download_installs_checked_files(tmp_path, monkeypatch):
    fake = _FakeURLs(lambda name, url: (REPO_MNIST / name).read_bytes())
    monkeypatch.setattr(urllib.request, "urlopen", fake)
    root = tmp_path / "fresh" / "mnist"
    ds = MNIST(root=str(root), train=False)
    assert len(ds) == 10000
    assert sorted(os.listdir(root)) == ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]
    for name in os.listdir(root):
        assert (root / name).read_bytes() == (REPO_MNIST / name).read_bytes()
    assert len(fake.calls) == 2 and fake.calls[0].startswith(MNIST._mirrors[0])
    MNIST(root=str(root), train=False)
    assert len(fake.calls) == 2  # present now: no download


def test_download_accepts_recompressed_file_from_a_later_mirror(tmp_path, monkeypatch):
    def content(name, url):
        if url.startswith(MNIST._mirrors[0]):
            return urllib.error.URLError("unreachable")
        raw = gzip.decompress((REPO_MNIST / name).read_bytes())
        return gzip.compress(raw, compresslevel=1, mtime=12345)  # other bytes, same data

    monkeypatch.setattr(urllib.request, "urlopen", _FakeURLs(content))
    ds = MNIST(root=str(tmp_path), train=False)
    assert len(ds) == 10000


def test_download_checksum_mismatch_leaves_nothing(tmp_path, monkeypatch):
    def content(name, url):
        raw = bytearray(gzip.decompress((REPO_MNIST / name).read_bytes()))
        raw[100] ^= 0xFF
        return gzip.compress(bytes(raw))

    monkeypatch.setattr(urllib.request, "urlopen", _FakeURLs(content))
    with pytest.raises(DatasetChecksumError) as info:
        MNIST(root=str(tmp_path), train=False)
    msg = str(info.value)
    assert "t10k-labels-idx1-ubyte.gz" in msg and "mismatch" in msg
    expected = datasets._MNIST_FILES["t10k-labels-idx1-ubyte.gz"]
    assert expected.sha256 in msg and expected.gz_sha256[0] in msg
    import hashlib
    bad = content("t10k-labels-idx1-ubyte.gz", "")
    assert hashlib.sha256(bad).hexdigest() in msg
    assert os.listdir(tmp_path) == []


def test_download_failure_and_corrupt_local_file(tmp_path, monkeypatch):
    monkeypatch.setattr(urllib.request, "urlopen",
                        _FakeURLs(lambda n, u: urllib.error.URLError("no network")))
    with pytest.raises(DatasetDownloadError, match="(?s)could not download.*no network"):
        MNIST(root=str(tmp_path / "a"), train=False)
    assert os.listdir(tmp_path / "a") == []
    root = tmp_path / "b"
    root.mkdir()
    (root / "t10k-labels-idx1-ubyte.gz").write_bytes(b"not gzip at all")
    with pytest.raises(DatasetChecksumError, match="(?s)t10k-labels-idx1-ubyte.gz.*delete"):
        MNIST(root=str(root), train=False)


@pytest.mark.skipif(not (FASHION_SYSTEM / "t10k-labels-idx1-ubyte.gz").exists(),
                    reason="Fashion-MNIST needs Debian's dataset-fashion-mnist "
                           "(/usr/share/datasets/fashion-mnist)")
def test_fashion_mnist_from_debian_package(tmp_path, monkeypatch):
    monkeypatch.setattr(urllib.request, "urlopen",
                        _FakeURLs(lambda n, u: AssertionError("must not download")))
    root = tmp_path / "fm"
    ds = FashionMNIST(root=str(root), train=False)
    assert len(ds) == 10000 and ds._data.shape == (10000, 28, 28, 1)
    assert ds._label[:4].tolist() == [9, 2, 1, 1]  # ankle boot, pullover, trouser, trouser
    assert np.bincount(ds._label).tolist() == [1000] * 10
    assert not root.exists()
    assert len(FashionMNIST(root=str(root), train=True)) == 60000


# transforms ------------------------------------------------------------------------------
def test_to_tensor_matches_numpy():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (5, 7, 3)).astype(np.uint8)
    out = T.ToTensor()(mx.nd.array(img))
    assert out.shape == (3, 5, 7) and out.dtype == np.float32
    np.testing.assert_array_equal(out.asnumpy(), img.transpose(2, 0, 1).astype(np.float32) / 255)
    batch = rng.integers(0, 256, (2, 5, 7, 3)).astype(np.uint8)
    out = T.ToTensor().forward(mx.nd.array(batch))
    np.testing.assert_array_equal(out.asnumpy(),
                                  batch.transpose(0, 3, 1, 2).astype(np.float32) / 255)
    with pytest.raises(ValueError, match="ToTensor"):
        T.ToTensor()(mx.nd.zeros((4, 4)))


def test_normalize_cast_compose_match_numpy():
    rng = np.random.default_rng(1)
    x = rng.random((3, 4, 5)).astype(np.float32)
    mean, std = (0.1, 0.2, 0.3), (0.5, 0.25, 2.0)
    ref = (x - np.array(mean, np.float32)[:, None, None]) / np.array(std, np.float32)[:, None,
                                                                                      None]
    out = T.Normalize(mean, std)(mx.nd.array(x))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out.asnumpy(), ref, rtol=1e-6)
    xb = np.stack([x, x * 2])
    np.testing.assert_allclose(T.Normalize(mean, std)(mx.nd.array(xb)).asnumpy()[1],
                               (2 * x - np.array(mean, np.float32)[:, None, None])
                               / np.array(std, np.float32)[:, None, None], rtol=1e-6)
    np.testing.assert_allclose(T.Normalize(0.5, 0.25)(mx.nd.array(x)).asnumpy(),
                               (x - 0.5) / 0.25, rtol=1e-6)
    with pytest.raises(ValueError, match="channels"):
        T.Normalize((0.1, 0.2), (1.0, 1.0))(mx.nd.array(x))
    with pytest.raises(TypeError, match="floating"):
        T.Normalize()(mx.nd.zeros((1, 2, 2), dtype="uint8"))
    c = T.Cast("float16")(mx.nd.array(x))
    assert c.dtype == np.float16
    img = rng.integers(0, 256, (4, 4, 3)).astype(np.uint8)
    composed = T.Compose([T.ToTensor(), T.Normalize(mean, std), T.Cast("float64")])
    out = composed(mx.nd.array(img))
    assert out.dtype == np.float64 and len(composed) == 3
    ref = ((img.transpose(2, 0, 1).astype(np.float32) / 255
            - np.array(mean, np.float32)[:, None, None])
           / np.array(std, np.float32)[:, None, None])
    np.testing.assert_allclose(out.asnumpy(), ref, rtol=1e-6)
    composed.hybridize()  # accepted (MXNet code calls it)
