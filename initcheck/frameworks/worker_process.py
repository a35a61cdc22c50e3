"""A framework in a child process: the pipe, its lifetime, and its errors.

Some frameworks cannot share the caller's process: Keras fixes its backend
once per process, and PaddlePaddle's native library crashes the process when
it is loaded after TensorFlow's.  Their rows draw in a long-lived child
process, started on first use::

    python -m MODULE FD [ARGS...]

``FD`` is the child's end of a socket pair; requests and answers are pickled
tuples (``multiprocessing.connection``, length-prefixed).  A request is
``(command, *args)``; the answer is ``("ok", value)``, ``("skip", reason)``,
``("error", one line)``, or an array: the header ``("array", dtype, shape)``
followed by its raw bytes, received straight into an array the parent
allocates.  The child's first message says whether it started.

The parent side (:class:`WorkerProcess`) turns every failure into one line, an
:class:`~initcheck.errors.InputError`: a child that cannot start, does not
answer within ``start_timeout``, dies (its last line of stderr is the reason),
or raises.  The child's stderr goes to a temporary file, never to the user's
terminal, its stdout to /dev/null; it ignores SIGINT (the parent ends it), it
ends when the socket closes, and every child is closed and reaped when the
caller's process exits.  A child that died is started afresh on the next
request.

The child side (:func:`serve`) answers requests by calling the handler's
method of the same name.
"""

from __future__ import annotations

import atexit
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import traceback
from multiprocessing.connection import Connection

import numpy as np

from initcheck.errors import InputError

#: Seconds a child has to import its framework and say it started.
START_TIMEOUT = 300.0


class WorkerError(InputError):
    """The child process failed; one line."""


class Skipped(str):
    """The child's reason for a row it cannot draw."""


def _package_root() -> str:
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def one_line(error: BaseException) -> str:
    """``Type: first line of the message``."""
    text = str(error).strip()
    first = text.splitlines()[0].strip() if text else ""
    return f"{type(error).__name__}: {first}" if first else type(error).__name__


class WorkerProcess:
    """One child process running ``python -m module FD *args``; requests are
    answered in order, one at a time (a lock).

    ``title`` names it in every error; ``env`` is added to the child's
    environment only; ``requires`` is ``(importable name, how to install it)``,
    checked before the child starts; ``what`` says what the child starts, for
    the error when it cannot ("Keras on jax").
    """

    def __init__(self, title: str, module: str, args: tuple[str, ...] = (), env: dict | None = None,
                 requires: tuple[str, str] | None = None, what: str = "", start_timeout: float = START_TIMEOUT):
        self.title, self.module, self.args = title, module, tuple(args)
        self.env, self.requires, self.what = dict(env or {}), requires, what or title
        self.start_timeout = start_timeout
        self.lock = threading.Lock()
        self.process = None
        self.connection = None
        self.log = None
        #: The child's first answer once it has started, else None.
        self.info = None
        self.failure: str | None = None

    # ---------------------------------------------------------------- lifetime

    def start(self) -> None:
        if self.failure:
            raise WorkerError(self.failure)
        if self.requires and importlib.util.find_spec(self.requires[0]) is None:
            self._fail(f"{self.requires[0]} is not installed ({self.requires[1]})")
        ours, theirs = socket.socketpair()
        env = dict(os.environ)
        env.update(self.env)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [_package_root(), env.get("PYTHONPATH")]))
        self.log = tempfile.TemporaryFile(prefix="initcheck-worker-")
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", self.module, str(theirs.fileno()), *self.args],
                pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=self.log, env=env, close_fds=True,
            )
        except OSError as error:
            ours.close()
            self._fail(f"cannot start the worker: {error}")
        finally:
            theirs.close()
        self.connection = Connection(ours.detach())
        _STARTED.append(self)
        if not self.connection.poll(self.start_timeout):
            self.close()
            self._fail(f"the worker did not start in {self.start_timeout:g} s")
        self.info = self._answer()

    def _fail(self, message: str):
        self.failure = f"{self.title}: {message}"
        raise WorkerError(self.failure)

    def close(self) -> None:
        """Ask the child to stop, then make sure it has (and reap it)."""
        process, connection = self.process, self.connection
        self.process = self.connection = None
        if connection is not None:
            try:
                connection.send(("close",))
            except (OSError, ValueError):
                pass
            connection.close()
        if process is not None:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self.log is not None:
            self.log.close()
            self.log = None

    def _last_log_line(self) -> str:
        if self.log is None:
            return ""
        self.log.flush()
        self.log.seek(0)
        lines = [line.strip() for line in self.log.read().decode(errors="replace").splitlines() if line.strip()]
        return lines[-1] if lines else ""

    def _died(self, doing: str):
        """The child is gone: close it and raise its last words."""
        code = None
        if self.process is not None:
            try:
                code = self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        said = self._last_log_line()
        self.close()
        reason = said or (f"exit status {code}" if code is not None else "no answer")
        self.info = None
        raise WorkerError(f"{self.title}: the worker stopped while {doing}: {reason}")

    # ---------------------------------------------------------------- requests

    def _answer(self):
        try:
            answer = self.connection.recv()
        except (EOFError, OSError):
            self._died("starting" if self.info is None else "drawing")
        kind = answer[0]
        if kind == "error":
            if self.info is None:  # it could not start
                message = answer[1]
                self.close()
                self._fail(f"cannot start {self.what}: {message}")
            raise WorkerError(f"{self.title}: {answer[1]}")
        if kind == "array":
            _, dtype, shape = answer
            from initcheck.lowp import sample_dtype

            out = np.empty(shape, dtype=sample_dtype(dtype))
            try:
                self.connection.recv_bytes_into(memoryview(out.reshape(-1).view(np.uint8)))
            except (EOFError, OSError):
                self._died("sending an array")
            return out
        if kind == "skip":
            return Skipped(answer[1])
        return answer[1]

    def request(self, *message):
        with self.lock:
            if self.connection is None:
                self.start()
            try:
                self.connection.send(message)
            except (OSError, ValueError):
                self._died(f"asked to {message[0]}")
            return self._answer()


_STARTED: list[WorkerProcess] = []


@atexit.register
def close_workers() -> None:
    """Every child this process started, closed and reaped."""
    while _STARTED:
        _STARTED.pop().close()


# ------------------------------------------------------------------ child side


def serve(connection: Connection, handler) -> None:
    """Answer requests with ``handler.<command>(*args)`` until ``close`` or
    until the socket closes.  A method may return ``("ok", value)`` or
    ``("skip", reason)`` itself; an ndarray goes as raw bytes; an exception is
    one line for the parent, its traceback to this process's log."""
    while True:
        try:
            request = connection.recv()
        except (EOFError, OSError):
            return
        command, args = request[0], request[1:]
        if command == "close":
            connection.send(("ok", None))
            return
        try:
            answer = getattr(handler, command)(*args)
        except Exception as error:  # the framework's own error types, as one line
            traceback.print_exc()
            connection.send(("error", one_line(error)))
            continue
        if isinstance(answer, np.ndarray):
            array = np.ascontiguousarray(answer)
            connection.send(("array", array.dtype.name, array.shape))
            connection.send_bytes(memoryview(array.reshape(-1).view(np.uint8)))
        elif isinstance(answer, tuple) and answer and answer[0] in ("ok", "skip"):
            connection.send(answer)
        else:
            connection.send(("ok", answer))


def run_child(argv: list[str], make_handler) -> int:
    """A child's ``main``: ``argv[0]`` is the socket's descriptor;
    ``make_handler(argv[1:])`` builds the handler (importing the framework),
    whose ``hello()`` is the first answer."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    connection = Connection(int(argv[0]))
    try:
        handler = make_handler(argv[1:])
        hello = handler.hello()
    except BaseException as error:  # a framework that cannot be imported
        traceback.print_exc()
        try:
            connection.send(("error", one_line(error)))
        finally:
            connection.close()
        return 1
    connection.send(("ok", hello))
    serve(connection, handler)
    connection.close()
    return 0
