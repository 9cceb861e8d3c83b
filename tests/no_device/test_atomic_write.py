"""Atomic writes (``mxcore.serialization.atomic_path``): temporary files name their
writer, never outlive a failed write, and those of killed writers are removed by
the next write of the same file."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys

import numpy as np
import pytest

from mxcore import serialization
from mxcore.serialization import atomic_path, load_arrays, save_arrays

# a writer that is killed (SIGKILL: no clean-up can run) in the middle of a write
_KILLED_WRITER = """
import os, signal, sys
from mxcore.serialization import atomic_path
with atomic_path(sys.argv[1]) as tmp:
    with open(tmp, "wb") as f:
        f.write(b"half a file")
    print(os.path.basename(tmp), flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
"""

# a writer that stays in the middle of a write until its stdin closes
_LIVE_WRITER = """
import os, sys
from mxcore.serialization import atomic_path
with atomic_path(sys.argv[1]) as tmp:
    with open(tmp, "wb") as f:
        f.write(b"still writing")
    print(os.path.basename(tmp), flush=True)
    sys.stdin.read()
"""


def _start(script: str, target) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", script, str(target)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)


def _temporaries(folder) -> list:
    return sorted(n for n in os.listdir(folder) if n.startswith("."))


def test_the_temporary_file_names_its_writer_and_lies_beside_the_target(tmp_path):
    with atomic_path(tmp_path / "a.json") as tmp:
        assert os.path.dirname(tmp) == str(tmp_path)
        name = os.path.basename(tmp)
        with open(tmp, "w") as f:
            f.write("{}")
    assert re.fullmatch(rf"\.a\.json\.[0-9a-f]{{6}}\.{os.getpid()}\.[0-9a-f]{{8}}\.tmp", name), \
        name
    assert os.listdir(tmp_path) == ["a.json"]


def test_killed_writers_temporaries_are_removed_live_writers_kept(tmp_path):
    target = tmp_path / "a.safetensors"
    other = tmp_path / "b.safetensors"
    killed, killed_other, live = (_start(_KILLED_WRITER, target), _start(_KILLED_WRITER, other),
                                  _start(_LIVE_WRITER, target))
    try:
        dead_tmp = killed.stdout.readline().strip()
        dead_other_tmp = killed_other.stdout.readline().strip()
        live_tmp = live.stdout.readline().strip()
        assert killed.wait(60) == -signal.SIGKILL and killed_other.wait(60) == -signal.SIGKILL
        assert str(killed.pid) in dead_tmp and str(live.pid) in live_tmp
        assert _temporaries(tmp_path) == sorted([dead_tmp, dead_other_tmp, live_tmp])

        save_arrays(str(target), {"w": np.ones(3, np.float32)})
        # the dead writer's file is gone; the live writer's and another target's stay
        assert _temporaries(tmp_path) == sorted([dead_other_tmp, live_tmp])
        np.testing.assert_array_equal(load_arrays(str(target))[0]["w"], np.ones(3))

        live.stdin.close()  # the live writer finishes its write: its file becomes the target
        assert live.wait(60) == 0
        assert target.read_bytes() == b"still writing"
        assert _temporaries(tmp_path) == [dead_other_tmp]
    finally:
        for p in (killed, killed_other, live):
            if p.poll() is None:
                p.kill()
                p.wait()


def test_a_writer_killed_after_a_live_one_ended_is_cleaned_next_time(tmp_path):
    target = tmp_path / "a.json"
    live = _start(_LIVE_WRITER, target)
    try:
        live_tmp = live.stdout.readline().strip()
        with atomic_path(target) as tmp, open(tmp, "w") as f:
            f.write("1")
        assert _temporaries(tmp_path) == [live_tmp]  # still running: kept
        live.kill()
        live.wait(60)
        with atomic_path(target) as tmp, open(tmp, "w") as f:
            f.write("2")
        assert _temporaries(tmp_path) == [] and target.read_text() == "2"
    finally:
        if live.poll() is None:
            live.kill()
            live.wait()


def test_other_suffixes_are_cleaned_by_their_own_writers(tmp_path):
    # datasets download into ``.part`` files through the same helper
    target = tmp_path / "train.gz"
    killed = subprocess.run(
        [sys.executable, "-c", _KILLED_WRITER.replace("atomic_path(sys.argv[1])",
                                                      "atomic_path(sys.argv[1], suffix='.part')"),
         str(target)], capture_output=True, text=True, timeout=120)
    part = killed.stdout.strip()
    assert part.endswith(".part") and _temporaries(tmp_path) == [part]
    with atomic_path(target) as tmp, open(tmp, "w") as f:  # a .tmp writer leaves it
        f.write("x")
    assert _temporaries(tmp_path) == [part]
    with atomic_path(target, suffix=".part") as tmp, open(tmp, "w") as f:
        f.write("y")
    assert _temporaries(tmp_path) == []


@pytest.mark.parametrize("error", [OSError("disk full"), KeyboardInterrupt()])
def test_an_error_mid_write_leaves_the_old_file_and_no_temporary(tmp_path, error):
    target = tmp_path / "a.json"
    target.write_text("old")
    with pytest.raises(type(error)):
        with atomic_path(target) as tmp:
            with open(tmp, "w") as f:
                f.write("half")
            raise error
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["a.json"]


def test_an_interrupt_right_after_the_temporary_is_created_removes_it(tmp_path, monkeypatch):
    target = tmp_path / "a.json"
    real_close = os.close

    def close_then_interrupt(fd):
        real_close(fd)
        raise KeyboardInterrupt
    monkeypatch.setattr(serialization.os, "close", close_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(target):
            pass
    monkeypatch.undo()
    assert os.listdir(tmp_path) == []


def test_liveness_probe():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    assert serialization._pid_alive(os.getpid())
    assert not serialization._pid_alive(proc.pid)


def test_the_autotune_cache_is_written_through_the_helper(tmp_path):
    from mxcore.autotune import Autotuner
    path = tmp_path / "autotune.json"
    killed = subprocess.run([sys.executable, "-c", _KILLED_WRITER, str(path)],
                            capture_output=True, text=True, timeout=120)
    assert _temporaries(tmp_path) == [killed.stdout.strip()]
    tuner = Autotuner(str(path))
    tuner.results["sig"] = {"winner": "p:k", "seconds": {"p:k": 1.0}}
    tuner._save()
    assert json.loads(path.read_text()) == tuner.results
    assert _temporaries(tmp_path) == []
