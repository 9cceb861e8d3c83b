"""The pytest plugin of mxcore's conformance kit (``mxcore.testing``), registered as the
entry point ``pytest11: mxcore``: the option
``--mxcore-device KIND[,KIND...]`` (or ``cuda:0``-style devices; repeatable) and the
parametrisation of ``ConformanceSuite`` subclasses over their cases, dtypes and devices.
Without the option the suites run on every available device. It lives outside the
``mxcore`` package and imports mxcore only when a suite is collected, so it costs other
pytest runs in the same environment nothing."""
from __future__ import annotations

from typing import List

import pytest


def pytest_addoption(parser) -> None:
    group = parser.getgroup("mxcore")
    group.addoption("--mxcore-device", action="append", default=[], metavar="DEVICE",
                    help="run mxcore conformance suites on DEVICE (a kind such as cpu or "
                         "cuda, or cuda:1; comma-separated or repeated); default: every "
                         "available device")


def pytest_configure(config) -> None:
    if config.getoption("mxcore_device", default=None):
        selected_devices(config)  # a device that does not exist is a usage error, at once


def selected_devices(config) -> List[str]:
    """The devices named by ``--mxcore-device``, else every available one (as strings)."""
    import mxcore as mx
    names = [n.strip() for opt in config.getoption("mxcore_device", default=[]) or []
             for n in opt.split(",") if n.strip()]
    if not names:
        return [str(d) for d in mx.available_devices()]
    try:
        return [str(mx.device(n)) for n in names]
    except Exception as exc:  # an unknown or unavailable kind: say so once, clearly
        raise pytest.UsageError(f"--mxcore-device: {exc}") from None


def pytest_generate_tests(metafunc) -> None:
    from mxcore.testing.suite import ConformanceSuite, parameters
    cls = metafunc.cls
    if cls is None or not issubclass(cls, ConformanceSuite):
        return
    params = parameters(metafunc.function.__name__, list(cls.cases))
    if params:
        names = ["case", "dtype"] if metafunc.function.__name__ == "test_forward" else ["case"]
        metafunc.parametrize(names, [p for p, _ in params], ids=[i for _, i in params])
    else:  # nothing to check (say, no case has a gradient): one skipped test says why
        metafunc.parametrize("case", [pytest.param(None, marks=pytest.mark.skip(
            reason=f"no case of {cls.__name__} applies"))])
        if metafunc.function.__name__ == "test_forward":
            metafunc.parametrize("dtype", [None])
    metafunc.parametrize("mxcore_device", selected_devices(metafunc.config), indirect=True)


@pytest.fixture
def mxcore_device(request):
    """The device a conformance test runs on (an ``mx.Device``)."""
    import mxcore as mx
    return mx.device(request.param)
