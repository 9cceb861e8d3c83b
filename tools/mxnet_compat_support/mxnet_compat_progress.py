"""pytest plugin (``-p mxnet_compat_progress``) of tools/mxnet_compat.py: appends one JSON
line per event to the file named by ``MXNET_COMPAT_PROGRESS``, flushed at once.

--junitxml is written only when pytest ends normally; these lines still tell, after a
crash or a killed hang, what was collected, which tests finished and how, and which test
was running last.
"""
import json
import os

_PATH = os.environ.get("MXNET_COMPAT_PROGRESS")
_FILE = None


def _emit(**event):
    global _FILE
    if not _PATH:
        return
    if _FILE is None:
        _FILE = open(_PATH, "a", encoding="utf-8")
    _FILE.write(json.dumps(event) + "\n")
    _FILE.flush()


def _crash_message(report):
    crash = getattr(report.longrepr, "reprcrash", None)
    if crash is not None:
        return crash.message
    if isinstance(report.longrepr, tuple):  # skips: (path, line, reason)
        return str(report.longrepr[-1])
    return str(report.longrepr or "")[-4000:]


def pytest_collectreport(report):
    if report.failed:
        _emit(event="collect_error", nodeid=report.nodeid, longrepr=str(report.longrepr)[-8000:])


def pytest_collection_finish(session):
    _emit(event="collected", nodeids=[item.nodeid for item in session.items])


def pytest_runtest_logstart(nodeid, location):
    _emit(event="start", nodeid=nodeid)


def pytest_runtest_logreport(report):
    event = dict(event="report", nodeid=report.nodeid, when=report.when,
                 outcome=report.outcome, duration=round(report.duration, 3))
    if hasattr(report, "wasxfail"):
        event["xfail"] = True
    if report.outcome != "passed":
        event["message"] = _crash_message(report)
    _emit(**event)


def pytest_sessionfinish(session, exitstatus):
    _emit(event="finish", exitstatus=int(exitstatus))
