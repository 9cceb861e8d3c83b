"""Vision datasets: MNIST and Fashion-MNIST (MXNet ``gluon.data.vision.datasets``).

Both read the four gzip-compressed idx files ``train-images-idx3-ubyte.gz``,
``train-labels-idx1-ubyte.gz``, ``t10k-images-idx3-ubyte.gz`` and
``t10k-labels-idx1-ubyte.gz`` with numpy: images are uint8 of shape
(N, 28, 28, 1), labels int32.  An item is ``(image, label)``: a uint8 NDArray
(28, 28, 1) on the CPU and a numpy int32, as in MXNet.

Where the files are looked for:

1. ``root`` if given, else ``$MXCORE_DATA/<name>`` if ``MXCORE_DATA`` is set,
   else ``~/.mxcore/datasets/<name>`` (``<name>`` is ``mnist`` or ``fashion-mnist``);
2. for Fashion-MNIST, Debian's ``dataset-fashion-mnist`` package
   (``/usr/share/datasets/fashion-mnist``);
3. otherwise they are downloaded into the root from a list of mirrors.

Every file is checked against SHA-256 constants kept here, once per process
(the result is cached by path, size and modification time).  A file passes when
its own hash is a known one or, for gzip files compressed differently (mirrors
and distributions recompress), when the hash of its uncompressed content is the
known content hash.  Downloads go to a temporary file in the root that is renamed
into place only after it passed the check; on a mismatch it is deleted and
:class:`DatasetChecksumError` names the file and both hashes.
"""
from __future__ import annotations

import gzip
import hashlib
import logging
import os
import threading
import urllib.error
import urllib.request
import zlib
from typing import Dict, NamedTuple, Optional, Sequence, Tuple

import numpy as np

from mxcore.base import MXCoreError
from mxcore.gluon.data import _batch
from mxcore.gluon.data.dataset import Dataset
from mxcore.serialization import atomic_path

__all__ = ["MNIST", "FashionMNIST", "DatasetChecksumError", "DatasetDownloadError"]

_log = logging.getLogger(__name__)


class DatasetChecksumError(MXCoreError, ValueError):
    """A dataset file does not have the expected SHA-256."""


class DatasetDownloadError(MXCoreError, OSError):
    """A dataset file is missing and could not be downloaded from any mirror."""


class _FileInfo(NamedTuple):
    sha256: str                 # of the uncompressed content (the data itself)
    gz_sha256: Tuple[str, ...]  # of known .gz files holding it


# The .gz hashes are those of the copies in the repository's data/mnist (see its
# SHA256SUMS) and of Debian's dataset-fashion-mnist 0.0~git20200523.55506a9-1; both
# are recompressed, so files from other mirrors pass through the content hash.
_MNIST_FILES: Dict[str, _FileInfo] = {
    "train-images-idx3-ubyte.gz": _FileInfo(
        "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        ("71524e2cd1ad2968737f7f2f2ff69cbfc32df8ccddff51593f7cb2d4e0eb5b64",)),
    "train-labels-idx1-ubyte.gz": _FileInfo(
        "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        ("fe03b8bd7915f70bf5aa08be480aa413fbd85afcaa58b35d230d335f284fd88e",)),
    "t10k-images-idx3-ubyte.gz": _FileInfo(
        "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        ("5634745efa576a17e7d4cf5cd9d09123c75e6538e5114267c2d156edaf519341",)),
    "t10k-labels-idx1-ubyte.gz": _FileInfo(
        "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        ("ae18e77e031ccde52407f794d123116439864147d33ac992975f85dd4dc42af6",)),
}

_FASHION_MNIST_FILES: Dict[str, _FileInfo] = {
    "train-images-idx3-ubyte.gz": _FileInfo(
        "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        ("b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7",)),
    "train-labels-idx1-ubyte.gz": _FileInfo(
        "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        ("0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056",)),
    "t10k-images-idx3-ubyte.gz": _FileInfo(
        "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        ("cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa",)),
    "t10k-labels-idx1-ubyte.gz": _FileInfo(
        "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        ("8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05",)),
}

_MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "https://apache-mxnet.s3-accelerate.dualstack.amazonaws.com/gluon/dataset/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)

_FASHION_MNIST_MIRRORS = (
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    "https://apache-mxnet.s3-accelerate.dualstack.amazonaws.com/gluon/dataset/fashion-mnist/",
)

_DOWNLOAD_TIMEOUT_S = 60

# (realpath, size, mtime_ns) of files that passed the check in this process
_verified: set = set()
_verified_lock = threading.Lock()


def _file_key(path: str):
    st = os.stat(path)
    return (os.path.realpath(path), st.st_size, st.st_mtime_ns)


def _gunzip(raw: bytes) -> Optional[bytes]:
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error):
        return None


def _check(raw: bytes, fname: str, info: _FileInfo, where: str) -> bytes:
    """The uncompressed content of ``raw`` if it is the known file, else raise."""
    gz_hash = hashlib.sha256(raw).hexdigest()
    payload = _gunzip(raw)
    if gz_hash in info.gz_sha256 and payload is not None:
        return payload
    content_hash = hashlib.sha256(payload).hexdigest() if payload is not None else None
    if content_hash == info.sha256:
        return payload
    expected = " or ".join(info.gz_sha256)
    got_content = content_hash if content_hash is not None else "not a valid gzip file"
    raise DatasetChecksumError(
        f"checksum mismatch for {fname} ({where}): sha256 is {gz_hash}, expected {expected} "
        f"(or a gzip file whose uncompressed content has sha256 {info.sha256}; its content: "
        f"{got_content})")


def _read_checked(path: str, fname: str, info: _FileInfo) -> bytes:
    """Read a local file, check it (once per process) and return its uncompressed content."""
    key = _file_key(path)
    with open(path, "rb") as f:
        raw = f.read()
    if key in _verified:
        payload = _gunzip(raw)
        if payload is not None:
            return payload
    payload = _check(raw, fname, info, path)
    with _verified_lock:
        _verified.add(key)
    return payload


def _download(fname: str, info: _FileInfo, root: str, mirrors: Sequence[str]) -> bytes:
    """Download ``fname`` into ``root`` (atomically, checked); return its content."""
    os.makedirs(root, exist_ok=True)
    dest = os.path.join(root, fname)
    failures = []
    mismatch = None
    for base in mirrors:
        url = base + fname
        try:
            _log.info("Downloading %s from %s", fname, url)
            with atomic_path(dest, suffix=".part") as tmp:
                with open(tmp, "wb") as f:
                    with urllib.request.urlopen(url, timeout=_DOWNLOAD_TIMEOUT_S) as resp:
                        while True:
                            chunk = resp.read(1 << 20)
                            if not chunk:
                                break
                            f.write(chunk)
                    f.flush()
                    os.fsync(f.fileno())
                with open(tmp, "rb") as f:
                    raw = f.read()
                payload = _check(raw, fname, info, f"downloaded from {url}")
            with _verified_lock:
                _verified.add(_file_key(dest))
            return payload
        except DatasetChecksumError as exc:
            mismatch = exc
            failures.append(str(exc))
        except (OSError, ValueError, urllib.error.URLError) as exc:
            failures.append(f"{url}: {exc}")
        except Exception as exc:  # http.client errors and the like
            failures.append(f"{url}: {type(exc).__name__}: {exc}")
    details = "\n  ".join(failures)
    if mismatch is not None:
        raise DatasetChecksumError(f"{mismatch}\nall mirrors tried:\n  {details}")
    raise DatasetDownloadError(f"could not download {fname} into {root}:\n  {details}")


def _parse_idx(payload: bytes, fname: str, images: bool) -> np.ndarray:
    """Decode an idx1 (labels) or idx3 (images) file."""
    magic = int.from_bytes(payload[:4], "big")
    if images:
        if magic != 2051 or len(payload) < 16:
            raise MXCoreError(f"{fname} is not an idx3 image file (magic {magic}, expected 2051)")
        n, rows, cols = (int.from_bytes(payload[i:i + 4], "big") for i in (4, 8, 12))
        if len(payload) != 16 + n * rows * cols:
            raise MXCoreError(f"{fname}: {len(payload)} bytes, header says {n}x{rows}x{cols}")
        return np.frombuffer(payload, np.uint8, count=n * rows * cols,
                             offset=16).reshape(n, rows, cols, 1)
    if magic != 2049 or len(payload) < 8:
        raise MXCoreError(f"{fname} is not an idx1 label file (magic {magic}, expected 2049)")
    n = int.from_bytes(payload[4:8], "big")
    if len(payload) != 8 + n:
        raise MXCoreError(f"{fname}: {len(payload)} bytes, header says {n} labels")
    return np.frombuffer(payload, np.uint8, count=n, offset=8).astype(np.int32)


def _default_root(name: str) -> str:
    env = os.environ.get("MXCORE_DATA")
    if env:
        return os.path.join(os.path.expanduser(env), name)
    return os.path.join(os.path.expanduser("~"), ".mxcore", "datasets", name)


class _DownloadedDataset(Dataset):
    """A dataset held in memory as numpy arrays ``_data`` and ``_label``."""

    def __init__(self, root, transform):
        self._transform = transform
        self._data: Optional[np.ndarray] = None
        self._label: Optional[np.ndarray] = None
        self._get_data()

    def _get_data(self):
        raise NotImplementedError

    def __getitem__(self, idx):
        from mxcore import ndarray as nd
        data = nd.array(self._data[idx], ctx=_batch.cpu(), dtype=self._data.dtype)
        if self._transform is not None:
            return self._transform(data, self._label[idx])
        return data, self._label[idx]

    def __len__(self) -> int:
        return len(self._label)

    def _get_batch(self, indices):
        if self._transform is not None or \
                type(self).__getitem__ is not _DownloadedDataset.__getitem__:
            return None
        idx = np.asarray(indices, dtype=np.intp)
        return [self._data[idx], self._label[idx]]


class MNIST(_DownloadedDataset):
    """The MNIST handwritten digits: 60000 training and 10000 test images.

    Parameters
    ----------
    root : str, optional
        Folder holding the four ``*-ubyte.gz`` files (downloaded there when
        absent).  Default: ``$MXCORE_DATA/mnist`` or ``~/.mxcore/datasets/mnist``.
    train : bool
        The training set (True) or the test set.
    transform : callable, optional
        ``transform(data, label) -> (data, label)`` applied to each item (MXNet);
        ``dataset.transform_first(fn)`` transforms the image only.
    """

    _name = "mnist"
    _files = _MNIST_FILES
    _mirrors: Tuple[str, ...] = _MNIST_MIRRORS
    _system_dirs: Tuple[str, ...] = ()

    def __init__(self, root: Optional[str] = None, train: bool = True, transform=None):
        self._train = bool(train)
        self._root = (os.path.expanduser(os.fspath(root)) if root is not None
                      else _default_root(self._name))
        super().__init__(self._root, transform)

    def _load(self, fname: str) -> bytes:
        info = self._files[fname]
        for folder in (self._root,) + tuple(self._system_dirs):
            path = os.path.join(folder, fname)
            if os.path.isfile(path):
                try:
                    return _read_checked(path, fname, info)
                except DatasetChecksumError as exc:
                    if folder != self._root:
                        _log.warning("%s", exc)
                        continue
                    raise DatasetChecksumError(f"{exc}\ndelete {path} to download it again") \
                        from None
        return _download(fname, info, self._root, self._mirrors)

    def _get_data(self):
        prefix = "train" if self._train else "t10k"
        images_file = f"{prefix}-images-idx3-ubyte.gz"
        labels_file = f"{prefix}-labels-idx1-ubyte.gz"
        label = _parse_idx(self._load(labels_file), labels_file, images=False)
        data = _parse_idx(self._load(images_file), images_file, images=True)
        if len(data) != len(label):
            raise MXCoreError(f"{images_file} has {len(data)} images but {labels_file} has "
                              f"{len(label)} labels")
        self._data, self._label = data, label


class FashionMNIST(MNIST):
    """Zalando's Fashion-MNIST: 28x28 grey images of 10 kinds of clothing, MNIST's layout.

    Parameters as :class:`MNIST`; the default root is ``$MXCORE_DATA/fashion-mnist``
    or ``~/.mxcore/datasets/fashion-mnist``.  When the files are not in the root,
    Debian's ``dataset-fashion-mnist`` package (``/usr/share/datasets/fashion-mnist``)
    is used if installed, before downloading.
    """

    _name = "fashion-mnist"
    _files = _FASHION_MNIST_FILES
    _mirrors = _FASHION_MNIST_MIRRORS
    _system_dirs = ("/usr/share/datasets/fashion-mnist",)
