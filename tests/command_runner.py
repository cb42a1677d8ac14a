"""How the tests start the commands (``run_module`` of tests/conftest.py): ``python -m MODULE ARGS``
or ``python SCRIPT ARGS``, each in a process of its own, forked from a server process that has
already imported the heavy third-party libraries (multiprocessing's forkserver, preloaded).

Why: a fresh interpreter spends about 9 s of CPU importing torch, NNI and Lightning before a
command does anything (``python -X importtime``: pytorch_lightning alone 8 s, for torch._dynamo,
torchmetrics and scipy.signal; NNI's mutables import it), and the suite starts a few hundred
commands on 2 cores.

What stays as in a fresh interpreter: the command runs as ``__main__`` through runpy (as ``-m``
and a script path do), with its own ``sys.argv``, ``sys.path[0]`` (the working directory for
``-m``, the script's folder for a script), working directory, environment and warning filters
(``PYTHONWARNINGS``) and multiprocessing's start method; an uncaught exception prints its
traceback and exits 1, ``SystemExit`` gives its status, the atexit handlers run, stdout and
stderr are captured at the file descriptors (what C libraries and child processes write
included). Only the third-party modules of ``PRELOAD`` are shared, as imported; our own modules
are imported afresh by every command.

``-c`` code always gets a fresh interpreter (the torch-free checks hide torch from one), and
``POSENAS_TEST_FRESH_PROCESSES=1`` gives every command one.
"""
from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import tempfile
from pathlib import Path

# the libraries every command imports anyway (NNI's mutables import Lightning and torch)
PRELOAD = ("numpy", "torch", "pytorch_lightning", "nni.nas.nn.pytorch", "cv2")

_context = multiprocessing.get_context("forkserver")
_context.set_forkserver_preload(list(PRELOAD))


def fresh_processes() -> bool:
    """Every command in a fresh interpreter (``POSENAS_TEST_FRESH_PROCESSES=1``)."""
    return os.environ.get("POSENAS_TEST_FRESH_PROCESSES", "") not in ("", "0")


def _exit_status(code: object) -> int:
    """The status the interpreter exits with for ``SystemExit(code)`` (a non-integer is printed
    to stderr and gives 1)."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=sys.stderr)
    return 1


def _run_in_child(args: list[str], cwd: str, env: dict[str, str], out: str, err: str) -> None:
    """In the forked child: run ``args`` as ``python ARGS`` would, then leave with its status."""
    import atexit
    import runpy
    import traceback
    import warnings

    for fd, path in ((1, out), (2, err)):
        target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(target, fd)
        os.close(target)
    sys.stdout = sys.__stdout__ = open(1, "w", closefd=False)  # noqa: SIM115 — the process's own
    sys.stderr = sys.__stderr__ = open(2, "w", closefd=False, buffering=1,  # noqa: SIM115
                                       errors="backslashreplace")
    # multiprocessing's start method as a fresh interpreter has it (the platform's default):
    # the forkserver leaves its own as the child's default, and every DataLoader worker a
    # command started then went through a forkserver that re-imported the command's __main__
    # (3x the time of a small training, 105 s instead of 56 s for the search_quality smoke)
    multiprocessing.set_start_method(None, force=True)
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)
    sys.warnoptions[:] = [w for w in env.get("PYTHONWARNINGS", "").split(",") if w]
    warnings._processoptions(sys.warnoptions)  # as the interpreter does at start-up
    # torch's intra-op threads, as ATen sets them at start-up (MKL_NUM_THREADS over
    # OMP_NUM_THREADS); OpenMP read the server's environment when it loaded torch
    threads = env.get("MKL_NUM_THREADS") or env.get("OMP_NUM_THREADS")
    if threads and threads.isdigit() and int(threads) > 0:
        import torch

        torch.set_num_threads(int(threads))
    status = 0
    try:
        if args[0] == "-m":
            sys.argv = list(args[1:])  # runpy puts the module's path in argv[0]
            sys.path.insert(0, cwd)
            runpy.run_module(args[1], run_name="__main__", alter_sys=True)
        else:
            script = Path(cwd, args[0])
            sys.argv = list(args)
            sys.path.insert(0, str(script.resolve().parent))
            runpy.run_path(str(script), run_name="__main__")
    except SystemExit as exc:
        status = _exit_status(exc.code)
    except BaseException:  # noqa: BLE001 — the interpreter prints any uncaught exception
        traceback.print_exc()
        status = 1
    try:
        atexit._run_exitfuncs()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(status)


def run_command(args: tuple[str, ...], cwd: Path, env: dict[str, str],
                timeout: float) -> subprocess.CompletedProcess:
    """``python ARGS`` in ``cwd`` with ``env``: its status and captured text, as
    ``subprocess.run(..., capture_output=True, text=True)`` returns them."""
    argv = [sys.executable, *args]
    forkable = args[0] == "-m" or args[0].endswith(".py")  # not -c code
    if fresh_processes() or not forkable:
        return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, env=env,
                              timeout=timeout)
    with tempfile.TemporaryDirectory(prefix="posenas-command-") as tmp:
        out, err = Path(tmp, "stdout"), Path(tmp, "stderr")
        child = _context.Process(target=_run_in_child,
                                 args=(list(args), str(cwd), dict(env), str(out), str(err)))
        child.start()
        child.join(timeout)
        if child.is_alive():
            child.kill()
            child.join()
            raise subprocess.TimeoutExpired(argv, timeout, _read(out), _read(err))
        return subprocess.CompletedProcess(argv, child.exitcode, _read(out), _read(err))


def _read(path: Path) -> str:
    """A captured stream as ``subprocess.run(text=True)`` decodes it (universal newlines)."""
    return path.read_text(errors="strict") if path.is_file() else ""
