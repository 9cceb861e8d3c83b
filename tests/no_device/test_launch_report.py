"""``mxcore launch``'s account of a failed MPI job, with a stand-in for mpiexec: an
MPI abort can end mpiexec before it passes on what the ranks wrote, so the launcher
prints the uncaught exceptions ranks left in its directory, each once."""
import os
import stat

import pytest

import mxcore.launch as launch
from mxcore.kvstore.group import _leave_for_launcher

MESSAGE = "mxcore: rank {r} of 2 raised an uncaught ValueError: bad {r}; aborting the job"


def _fake_mpiexec(tmp_path, body):
    path = tmp_path / "mpiexec"
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


@pytest.mark.parametrize("printed", [(), (1,), (0, 1)])
def test_errors_that_did_not_get_out_are_printed_once(tmp_path, monkeypatch, capfd, printed):
    # both ranks leave their message; mpiexec passes on only those of ``printed``
    lines = "".join(f'echo "{MESSAGE.format(r=r)}" >&2\n' for r in printed)
    monkeypatch.setattr(launch, "mpiexec", lambda: _fake_mpiexec(tmp_path, (
        f'MXCORE_LAUNCH_DIR="$MXCORE_LAUNCH_DIR" python3 -c "{_LEAVE}"\n{lines}'
        "echo 'some output'\nexit 3\n")))
    assert launch.launch(2, ["-c", "pass"]) == 3
    out, err = capfd.readouterr()
    assert "some output" in out
    for r in (0, 1):
        assert err.count(MESSAGE.format(r=r)) == 1, err


_LEAVE = ("import os; [open(os.path.join(os.environ['MXCORE_LAUNCH_DIR'], f'{r}.error'), 'w')"
          ".write(" + repr(MESSAGE) + ".format(r=r)) for r in (0, 1)]")


def test_a_successful_job_prints_nothing_more(tmp_path, monkeypatch, capfd):
    monkeypatch.setattr(launch, "mpiexec", lambda: _fake_mpiexec(tmp_path, "exit 0\n"))
    assert launch.launch(2, ["-c", "pass"]) == 0
    assert capfd.readouterr().err == ""


def test_the_abort_hook_leaves_its_message_whole(tmp_path, monkeypatch):
    monkeypatch.setenv("MXCORE_LAUNCH_DIR", str(tmp_path))
    _leave_for_launcher(3, "the message")
    assert sorted(os.listdir(tmp_path)) == ["3.error"]
    assert (tmp_path / "3.error").read_text() == "the message"
    monkeypatch.setenv("MXCORE_LAUNCH_DIR", str(tmp_path / "gone"))
    _leave_for_launcher(3, "nowhere to go")  # outside a launch: nothing, no error


def test_output_passes_through_byte_for_byte(tmp_path, monkeypatch, capfd):
    # a progress bar's carriage returns and an unfinished last line stay as they are
    monkeypatch.setattr(launch, "mpiexec", lambda: _fake_mpiexec(tmp_path, (
        "printf 'step 1\\r step 2\\r done\\n' >&2\nprintf 'partial'\nexit 0\n")))
    assert launch.launch(2, ["-c", "pass"]) == 0
    out, err = capfd.readouterr()
    assert err == "step 1\r step 2\r done\n" and out == "partial"


def test_the_rank_that_ended_the_job_is_named(tmp_path, monkeypatch, capfd):
    # MPI's launcher reports the pid; the rank's pid file (``ProcessGroup``) names it
    monkeypatch.setattr(launch, "mpiexec", lambda: _fake_mpiexec(tmp_path, (
        'echo 4242 > "$MXCORE_LAUNCH_DIR/1.pid"\n'
        "echo '=   PID 4242 RUNNING AT node7'\necho '=   EXIT CODE: 9'\nexit 9\n")))
    assert launch.launch(2, ["-c", "pass"]) == 9
    err = capfd.readouterr().err
    assert "mxcore launch: rank 1 (pid 4242 on node7) ended the job: killed by signal 9" in err
