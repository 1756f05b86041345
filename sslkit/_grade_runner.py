"""The grader's child process: ``python -m sslkit._grade_runner`` runs one job of cells.

:mod:`sslkit.grade` starts it in a fresh temporary folder (under an OS sandbox where the machine
has one, see :mod:`sslkit._grade_sandbox`) and writes the job, a JSON object, to its stdin:

* ``cells``: ``[{"index", "source", "kind", "into"}]`` in order. ``kind`` is ``learner`` (the
  submission's code), ``given`` (the exercise's own cells) or ``test`` (a graded test, run with
  assertions on). ``into`` names the namespace: ``main``, or ``learner`` for the grading run's
  learner definitions, which live in a namespace of their own so that they cannot rebind a name
  the tests use (``torch``, ``math``, ...); ``export`` then lists the names copied to ``main``;
* ``forget``: names removed from ``main`` before the first learner cell (the solution's own
  definitions, which the grading run's fixtures were built with);
* ``mirrors``: ``[[qualified name, grade_id, filename], ...]``: library functions an answer must
  not call. Each is wrapped, wherever a loaded ``sslkit`` module holds it, by a function that notes
  the call when the answer's own code (its cell's ``filename``) is on the stack;
* ``protected``: folders the submission may not read; ``workdir``: the only folder it may
  write to.

Before the first learner cell it installs an audit hook (PEP 578). While learner code is on the
stack it refuses, and notes, opening or listing a protected path, writing or deleting outside
the work folder, starting a process and loading C code with ``ctypes``; and it snapshots the
attributes of the modules tests rely on (``builtins``, ``math``, ``torch`` and its ``testing``
and ``nn.functional``, every ``sslkit`` module), comparing after every cell: a change is noted
as tampering. Results go, one JSON line per event, to the file descriptor named by
``SSLKIT_GRADE_FD``.
"""

from __future__ import annotations

import builtins
import functools
import io
import json
import math
import os
import sys
import threading
import traceback
from contextlib import redirect_stderr, redirect_stdout

_LIMIT = 20_000  # characters of printed output kept per cell
_state = threading.local()


class _Events:
    def __init__(self, fd: int):
        self._out = os.fdopen(fd, "w", buffering=1, encoding="utf-8")

    def __call__(self, **event) -> None:
        self._out.write(json.dumps(event) + "\n")
        self._out.flush()


def _learner_on_stack(prefix=("<learner",)) -> bool:
    frame = sys._getframe(2)
    while frame is not None:
        if frame.f_code.co_filename.startswith(prefix):
            return True
        frame = frame.f_back
    return False


def _inside(path, folder: str) -> bool:
    try:
        real = os.path.realpath(os.fsdecode(path))
    except (TypeError, ValueError):
        return False
    return real == folder or real.startswith(folder.rstrip(os.sep) + os.sep)


def _install_hook(protected: list[str], workdir: str, note) -> None:
    protected = [os.path.realpath(p) for p in protected]
    workdir = os.path.realpath(workdir)
    writes = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
    changes = {"os.remove", "os.rename", "os.rmdir", "os.truncate", "os.chmod", "os.chown",
               "os.mkdir", "os.symlink", "os.link", "os.utime", "shutil.rmtree"}
    listing = {"os.listdir", "os.scandir", "glob.glob"}
    spawning = {"subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn",
                "os.fork", "os.forkpty", "pty.spawn", "os.startfile"}
    watched = {"open", *changes, *listing, *spawning, "ctypes.dlopen", "ctypes.dlsym",
               "sys.addaudithook"}

    def hook(event, args):
        if event not in watched or getattr(_state, "busy", False):
            return
        _state.busy = True
        try:
            if not _learner_on_stack():
                return
            reason = None
            if event in spawning:
                reason = ("tampered", f"starts a process ({event})")
            elif event.startswith("ctypes") or event == "sys.addaudithook":
                reason = ("tampered", f"{event}")
            else:
                path = args[0] if args else None
                if isinstance(path, int) or path is None:  # a file descriptor: not a path
                    return
                writing = event in changes or event == "open" and (
                    (isinstance(args[1], str) and any(c in args[1] for c in "wax+"))
                    or (isinstance(args[2], int) and args[2] & writes))
                paths = [a for a in (args[:1] if event == "open" else args[:2])
                         if isinstance(a, (str, bytes, os.PathLike))]
                if writing and not all(_inside(a, workdir) for a in paths):
                    reason = ("tampered", f"{event} {os.fsdecode(path)!r}")
                elif any(_inside(path, p) for p in protected):
                    reason = ("reads_solution", f"{event} {os.fsdecode(path)!r}")
            if reason:
                note(*reason)
                raise PermissionError(f"the grader does not allow this: {reason[1]}")
        finally:
            _state.busy = False

    sys.addaudithook(hook)


def _snapshot() -> dict[str, tuple[object, dict]]:
    import torch
    import torch.nn.functional
    import torch.testing

    modules = {"builtins": builtins, "math": math, "torch": torch, "torch.testing": torch.testing,
               "torch.nn.functional": torch.nn.functional}
    modules.update({n: m for n, m in list(sys.modules.items())
                    if n.split(".")[0] == "sslkit" and m is not None})

    def watched(name, key, value):  # functions and classes; lazily loaded submodules vary
        return callable(value) and not isinstance(value, type(math)) and (
            name.startswith("sslkit") or not key.startswith("_"))

    return {n: (m, {k: v for k, v in vars(m).items() if watched(n, k, v)})
            for n, m in modules.items()}


def _changed(snapshot) -> list[str]:
    return [f"{name}.{key}" for name, (module, before) in snapshot.items()
            for key, value in before.items() if vars(module).get(key, _changed) is not value]


def _wrap_mirrors(mirrors: list[list[str]], note) -> None:
    """Replace each mirrored library function, wherever an sslkit module or class holds it."""
    import importlib

    owners: dict[str, list] = {}
    for qualname, gid, filename in mirrors:
        owners.setdefault(qualname, []).append((gid, filename))
    for qualname, answers in owners.items():
        parts = qualname.split(".")
        cut = next(i for i in range(len(parts), 0, -1) if _try_import(".".join(parts[:i])))
        owner = importlib.import_module(".".join(parts[:cut]))
        for part in parts[cut:-1]:
            owner = getattr(owner, part)
        original = getattr(owner, parts[-1])

        def make(original, answers=tuple(answers), qualname=qualname):
            @functools.wraps(original)
            def mirrored(*args, **kwargs):
                for gid, filename in answers:
                    if _learner_on_stack((filename,)):
                        note("uses_reference", f"{gid} calls {qualname}", gid=gid)
                return original(*args, **kwargs)
            del mirrored.__wrapped__  # no way back to the unwatched original
            return mirrored

        wrapper = make(original)
        holders = [m for n, m in list(sys.modules.items()) if n.split(".")[0] == "sslkit"]
        for holder in [*holders, owner]:
            for key, value in list(vars(holder).items()):
                if value is original:
                    setattr(holder, key, wrapper)


def _try_import(name: str) -> bool:
    import importlib

    try:
        importlib.import_module(name)
    except ImportError:
        return False
    return True


def _error_text(err: BaseException) -> tuple[str, str, str]:
    lines = traceback.format_exception(type(err), err, err.__traceback__)
    keep = [ln for ln in lines if "_grade_runner.py" not in ln]
    return type(err).__name__, str(err), "".join(keep)[-_LIMIT:]


def main() -> int:
    job = json.loads(sys.stdin.read())
    emit, noted = _Events(int(os.environ.pop("SSLKIT_GRADE_FD"))), set()

    def note(flag: str, detail: str, **extra) -> None:
        if (flag, detail) not in noted:
            noted.add((flag, detail))
            emit(event="flag", flag=flag, detail=detail, **extra)

    os.chdir(job["workdir"])
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch  # noqa: F401  (imported before the hook: library start-up is trusted)
    from IPython.core.inputtransformer2 import TransformerManager
    from IPython.core.interactiveshell import InteractiveShell

    import sslkit  # noqa: F401

    shell = InteractiveShell.instance(history_length=0)  # display(), get_ipython()
    main_ns, learner_ns = shell.user_ns, {}
    transform = TransformerManager().transform_cell  # the learner cannot add transformers here
    _wrap_mirrors(job.get("mirrors", []), note)
    _install_hook(job.get("protected", []), job["workdir"], note)
    snapshot, forgot = None, False
    emit(event="ready")
    for cell in job["cells"]:
        kind, index = cell["kind"], cell["index"]
        if kind == "learner" and not forgot:
            for name in job.get("forget", []):
                main_ns.pop(name, None)
            learner_ns.update(main_ns)
            snapshot, forgot = _snapshot(), True
        emit(event="start", index=index)
        ns = learner_ns if cell.get("into") == "learner" else main_ns
        out, err = io.StringIO(), io.StringIO()
        error = None
        try:
            code = compile(transform(cell.pop("source")), f"<{kind}-{index}>", "exec",
                           dont_inherit=True, optimize=0)
            with redirect_stdout(out), redirect_stderr(err):
                exec(code, ns)
        except BaseException as exc:  # a learner's SystemExit is a failed cell, not an exit
            error = _error_text(exc)
        finally:
            plt.close("all")
        for name in cell.get("export", []):
            if name in learner_ns:
                main_ns[name] = learner_ns[name]
        if snapshot is not None:
            for what in _changed(snapshot):
                note("tampered", f"changed {what}")
            snapshot = _snapshot()
        emit(event="done", index=index, stdout=out.getvalue()[-_LIMIT:],
             stderr=err.getvalue()[-_LIMIT:], error=error)
    emit(event="finished")
    return 0


if __name__ == "__main__":
    sys.exit(main())
