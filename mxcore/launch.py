"""``mxcore launch``: start a script on N processes.

With MPI (the default) the job runs under the ``mpiexec`` installed with mpi4py's MPI
(the mpich wheel of ``pip install 'mxcore[dist]'`` puts it beside the interpreter), on
this machine or the hosts of ``--hostfile``; the ``dist_*`` kvstores reduce over its
ranks.  ``--launcher local`` starts N plain processes instead, for scripts that only
need to know which share of the work is theirs.  Either way every process sees
``MXCORE_RANK`` and ``MXCORE_WORLD_SIZE`` (under MPI, ``mxcore.launch.rank()`` reads the
rank MPI gives it), and the job's exit status is the first failing process's.
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from typing import List, Optional, Sequence

from mxcore.base import MXCoreError

__all__ = ["launch", "rank", "world_size", "mpiexec"]


def rank() -> int:
    """This process's rank in a launched job (0 outside one)."""
    for var in ("MXCORE_RANK", "PMI_RANK", "OMPI_COMM_WORLD_RANK"):
        if os.environ.get(var):
            return int(os.environ[var])
    return 0


def world_size() -> int:
    """The number of processes of a launched job (1 outside one)."""
    for var in ("MXCORE_WORLD_SIZE", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE"):
        if os.environ.get(var):
            return int(os.environ[var])
    return 1


def mpiexec() -> str:
    """The ``mpiexec`` of the MPI mpi4py uses: beside this interpreter (the mpich wheel),
    else on PATH."""
    here = os.path.dirname(sys.executable)
    found = shutil.which("mpiexec", path=here) or shutil.which("mpiexec")
    if found is None:
        raise MXCoreError("mxcore launch: no mpiexec found beside the interpreter or on PATH; "
                          "pip install 'mxcore[dist]' installs mpi4py and the mpich wheel "
                          "(or use --launcher local for processes without MPI)")
    return found


def launch(n: int, command: Sequence[str], hostfile: Optional[str] = None,
           launcher: str = "mpi", timeout: Optional[float] = None) -> int:
    """Run ``command`` (``script.py args`` or ``-m module args``) on ``n`` processes
    with this interpreter; returns the job's exit status."""
    if n < 1:
        raise MXCoreError(f"mxcore launch: -n must be at least 1, got {n}")
    if not command:
        raise MXCoreError("mxcore launch: give a script (or -m module) to run")
    if hostfile is not None and not os.path.isfile(hostfile):
        raise MXCoreError(f"mxcore launch: hostfile {hostfile!r} does not exist")
    program = [sys.executable, *command]
    env = {**os.environ, "MXCORE_WORLD_SIZE": str(n)}
    if launcher == "mpi":
        hosts = ["-f", hostfile] if hostfile is not None else []
        with tempfile.TemporaryDirectory(prefix="mxcore-launch-") as ranks:
            env["MXCORE_LAUNCH_DIR"] = ranks  # each rank's pid (``ProcessGroup``)
            proc = subprocess.Popen([mpiexec(), "-n", str(n), *hosts, *program], env=env,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            report, errors = _Report(proc.stdout, sys.stdout), _Report(proc.stderr, sys.stderr)
            status = _wait([proc], timeout)
            report.join()
            errors.join()
            if status != 0:
                _print_lost_errors(ranks, errors.raised)
                report.name_the_rank(ranks)
            return status
    if launcher != "local":
        raise MXCoreError(f"mxcore launch: unknown launcher {launcher!r} (mpi or local)")
    if hostfile is not None:
        raise MXCoreError("mxcore launch: --hostfile needs the mpi launcher")
    procs = [subprocess.Popen(program, env={**env, "MXCORE_RANK": str(r)}) for r in range(n)]
    return _wait(procs, timeout)


class _Report(threading.Thread):
    """Copies one of mpiexec's streams through as it comes, byte for byte (a progress
    bar's carriage returns and partial lines stay as they are), noting from its whole
    lines the process MPI's launcher reports as having ended the job ("BAD TERMINATION
    ... PID p RUNNING AT host ... EXIT CODE: c") and the ranks whose uncaught exception
    got out ("mxcore: rank r of n raised ...")."""

    def __init__(self, stream, to):
        super().__init__(daemon=True)
        self.stream, self.to = stream, to
        self.pid: Optional[int] = None
        self.host = self.code = ""
        self.raised: set = set()
        self.start()

    def run(self) -> None:
        fd, raw = self.stream.fileno(), getattr(self.to, "buffer", None)
        pending = b""
        while True:
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                break
            if raw is not None:
                self.to.flush()  # what this process wrote through the text layer first
                raw.write(chunk)
                raw.flush()
            else:
                self.to.write(chunk.decode(errors="replace"))
                self.to.flush()
            *lines, pending = (pending + chunk).split(b"\n")
            for line in lines:
                self._note(line.decode(errors="replace"))
            pending = pending[-4096:]  # a progress bar never ends its line
        self._note(pending.decode(errors="replace"))

    def _note(self, line: str) -> None:
        found = re.search(r"PID (\d+) RUNNING AT (\S+)", line)
        if found and self.pid is None:
            self.pid, self.host = int(found.group(1)), found.group(2)
        found = re.search(r"EXIT CODE: (\d+)", line)
        if found and not self.code:
            self.code = found.group(1)
        found = re.match(r"mxcore: rank (\d+) of \d+ raised an uncaught", line)
        if found:
            self.raised.add(int(found.group(1)))

    def name_the_rank(self, ranks: str) -> None:
        if self.pid is None:
            return
        rank = next((name.split(".")[0] for name in os.listdir(ranks)
                     if name.endswith(".pid")
                     and open(os.path.join(ranks, name)).read().strip() == str(self.pid)), "?")
        code = int(self.code) if self.code.isdigit() else None
        how = (f"killed by signal {code}" if code is not None and 0 < code < 32 and code != 1
               else f"exit code {self.code or '?'}")
        sys.stderr.write(f"mxcore launch: rank {rank} (pid {self.pid} on {self.host}) ended "
                         f"the job: {how}\n")


def _print_lost_errors(ranks: str, seen: set) -> None:
    """The uncaught exceptions ranks left in the launch directory (``<rank>.error``,
    see ``kvstore.group``) that did not get out through mpiexec: an MPI abort can end
    it before it passes on what the ranks wrote."""
    for name in sorted(os.listdir(ranks)):
        rank, _, kind = name.partition(".")
        if kind == "error" and rank.isdigit() and int(rank) not in seen:
            with open(os.path.join(ranks, name)) as f:
                sys.stderr.write(f.read().rstrip("\n") + "\n")
    sys.stderr.flush()


def _wait(procs: List[subprocess.Popen], timeout: Optional[float]) -> int:
    """Wait for every process; the first to fail stops the others."""
    deadline = None if timeout is None else time.monotonic() + timeout
    status = 0
    try:
        while any(p.poll() is None for p in procs):
            failed = [p for p in procs if p.returncode not in (None, 0)]
            if failed:
                status = failed[0].returncode
                sys.stderr.write(f"mxcore launch: process {procs.index(failed[0])} exited "
                                 f"with status {status}; stopping the others\n")
                break
            if deadline is not None and time.monotonic() > deadline:
                sys.stderr.write(f"mxcore launch: the job ran past {timeout:g} s; stopping it\n")
                status = 124
                break
            time.sleep(0.05)
    except KeyboardInterrupt:
        status = 130
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    if status == 0:
        status = next((p.returncode for p in procs if p.returncode != 0), 0)
    return status
