"""Run a grading job in its own process, its own folder and, where possible, an OS sandbox.

:func:`run_job` starts ``python -m sslkit._grade_runner`` (see that module for the job's format
and the in-process guards), feeds it the job on stdin and reads its events from a pipe. The
process gets a fresh temporary working folder that is also its ``HOME``, ``TMPDIR``, cache and
matplotlib folder, and is killed with its whole process group when the time runs out. If it
dies in a cell (a segfault, ``os._exit``), the job is run again without that cell, so the later
cells are still graded.

Where the machine allows unprivileged user namespaces (util-linux ``unshare``, part of every
Linux distribution), the process also runs in new user, mount, PID and network namespaces:
no network interface but loopback (down), the protected folders (the solutions, the other
submissions) replaced by empty in-memory folders, and the instructor's folders mounted
read-only. :func:`sandbox` says which protection is active.
"""

from __future__ import annotations

import functools
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class CellRun:
    """One cell's run: printed output, and ``(name, message, traceback)`` if it raised."""

    stdout: str = ""
    stderr: str = ""
    error: tuple[str, str, str] | None = None


@dataclass
class JobResult:
    """What a job did: cell index → :class:`CellRun`, flags noted with details, and how it ended
    (``timed_out``; ``died_in``: the cells the process died in)."""

    cells: dict[int, CellRun] = field(default_factory=dict)
    flags: list[dict] = field(default_factory=list)
    timed_out: bool = False
    died_in: list[int] = field(default_factory=list)


@functools.cache
def sandbox() -> str:
    """``"unshare"`` when namespaces work on this machine (probed once), else ``"none"``."""
    if sys.platform != "linux" or shutil.which("unshare") is None:
        return "none"
    with tempfile.TemporaryDirectory() as folder:
        q = shlex.quote(folder)  # the two kinds of mount _command uses
        probe = [*_unshare_prefix(), "sh", "-c", f"mount --bind {q} {q} && "
                 f"mount -o remount,bind,ro {q} && mount -t tmpfs none {q}"]
        try:
            ok = subprocess.run(probe, capture_output=True, timeout=20).returncode == 0
        except (OSError, subprocess.SubprocessError):
            ok = False
    return "unshare" if ok else "none"


def hidden_folders(*folders) -> list[str]:
    """The ``folders`` (resolved) that a run may be denied: all but those holding the library or
    the Python that runs it, which the run needs."""
    keep = (Path(__file__).resolve().parent, Path(sys.prefix).resolve(),
            Path(sys.executable).resolve())
    out = [Path(f).resolve() for f in folders]
    return [str(f) for f in out if not any(f == k or f in k.parents for k in keep)]


def readonly_folders(*folders) -> list[str]:
    """The folders a run sees read-only: the working directory (the instructor's) and
    ``folders``, resolved and sorted."""
    return sorted({str(Path(f).resolve()) for f in (Path.cwd(), *folders)})


def _unshare_prefix() -> list[str]:
    return ["unshare", "--user", "--map-root-user", "--mount", "--pid", "--fork", "--net",
            "--kill-child"]


def _command(protected: list[str], readonly: list[str], workdir: str) -> list[str]:
    runner = [sys.executable, "-m", "sslkit._grade_runner"]
    if sandbox() == "none":
        return runner

    def holds_workdir(path):  # never hide or freeze the folder the process works in
        return os.path.commonpath([os.path.realpath(path), workdir]) == os.path.realpath(path)

    steps = []
    for path in readonly:  # first: a bind mount made later would uncover the hidden folders
        if os.path.isdir(path) and not holds_workdir(path):
            q = shlex.quote(path)
            steps.append(f"mount --bind {q} {q} && mount -o remount,bind,ro {q}")
    steps += [f"mount -t tmpfs -o size=1m none {shlex.quote(p)}" for p in protected
              if os.path.isdir(p) and not holds_workdir(p)]
    script = " && ".join([*steps, "exec " + shlex.join(runner)])
    return [*_unshare_prefix(), "sh", "-c", script]


def _environment(workdir: str, threads: int) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JPY_", "JUPYTER"))}
    home = os.path.join(workdir, "home")
    os.makedirs(home, exist_ok=True)
    env.update(HOME=home, TMPDIR=home, MPLCONFIGDIR=home, IPYTHONDIR=home,
               SSLKIT_CACHE=os.path.join(workdir, "cache"), MPLBACKEND="Agg",
               OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads),
               PYTHONDONTWRITEBYTECODE="1", PYTHONNOUSERSITE="1")
    env.setdefault("SSLKIT_PROFILE", "quick")
    env.setdefault("SSLKIT_PROGRESS", "0")
    return env


STARTUP = 180  # seconds a process may take to import its libraries, not counted in the budget


def _run_once(cells: list[dict], job: dict, budget: list[float], workdir: str, threads: int,
              result: JobResult) -> int | None:
    """Run ``cells``; record results; return the index of the cell the process died in.

    ``budget`` holds the seconds left for running cells; the time spent here after the process
    reported it was ready is taken off it."""
    read_fd, write_fd = os.pipe()
    os.set_inheritable(write_fd, True)
    command = _command(job.get("protected", []), job.get("readonly", []), workdir)
    env = {**_environment(workdir, threads), "SSLKIT_GRADE_FD": str(write_fd)}
    proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, cwd=workdir, start_new_session=True,
                            env=env, pass_fds=(write_fd,))
    os.close(write_fd)
    payload = {**{k: v for k, v in job.items() if k not in ("readonly",)}, "cells": cells,
               "workdir": workdir}
    events, running = [], None
    stderr_tail = []

    def drain_stderr():
        for line in proc.stderr:
            stderr_tail[:] = (stderr_tail + [line])[-40:]

    threading.Thread(target=drain_stderr, daemon=True).start()
    try:
        proc.stdin.write(json.dumps(payload).encode())
        proc.stdin.close()
    except BrokenPipeError:
        pass
    reader = os.fdopen(read_fd, "r", encoding="utf-8", errors="replace")
    timer = threading.Timer(STARTUP, _kill, (proc,))
    timer.start()
    ready = None
    try:
        for line in reader:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            events.append(event)
            if event.get("event") == "ready" and ready is None:
                ready = time.monotonic()
                timer.cancel()
                timer = threading.Timer(max(0.0, budget[0]), _kill, (proc,))
                timer.start()
            elif event.get("event") == "start":
                running = event.get("index")
            elif event.get("event") == "done":
                running = None
                err = event.get("error")
                result.cells[event["index"]] = CellRun(event.get("stdout", ""),
                                                       event.get("stderr", ""),
                                                       tuple(err) if err else None)
            elif event.get("event") == "flag":
                result.flags.append({k: v for k, v in event.items() if k != "event"})
    finally:
        timer.cancel()
        reader.close()
        proc.wait()
    if ready is not None:
        budget[0] -= time.monotonic() - ready
    if any(e.get("event") == "finished" for e in events):
        return None
    if ready is not None and budget[0] <= 0:
        result.timed_out = True
        return None
    if running is None:  # the runner failed before its first cell: report it, do not loop
        tail = b"".join(stderr_tail).decode(errors="replace")[-2000:]
        raise RuntimeError(f"the grading process failed to start: {tail}")
    return running


def _kill(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, 9)
    except (ProcessLookupError, PermissionError):
        pass


def run_job(job: dict, *, timeout: float, threads: int = 1) -> JobResult:
    """Run ``job["cells"]`` in a fresh process and folder; see the module docstring.

    ``job`` also holds ``protected`` (folders hidden and refused), ``readonly`` (folders mounted
    read-only under the OS sandbox), ``mirrors`` and ``forget`` (see :mod:`sslkit._grade_runner`).
    ``timeout`` (seconds) bounds the time spent running cells, restarts included (the start-up
    of each process, importing torch, is bounded separately by :data:`STARTUP`).
    """
    budget = [float(timeout)]
    died_in: list[int] = []
    with tempfile.TemporaryDirectory(prefix="sslkit-grade-") as workdir:
        workdir = os.path.realpath(workdir)
        while True:  # after a death, everything again in a fresh process, minus the killer cells
            result = JobResult(died_in=list(died_in))
            cells = [c for c in job["cells"] if c["index"] not in died_in]
            died = _run_once(cells, job, budget, workdir, threads, result) if cells else None
            if died is not None:
                died_in.append(died)
                continue
            for index in died_in:
                result.cells[index] = CellRun(error=(
                    "DeadKernelError", "the process died in this cell (skipped)", ""))
            return result
