"""Save the last snapshot when Lambda shuts the sandbox down; leave SIGTERM as it was for children.

With an extension registered, Lambda sends SIGTERM to the runtime and gives
it up to 300 ms before SHUTDOWN goes to the extensions. A Python signal
handler alone cannot be relied on there: Python runs it in the main thread,
between bytecodes, and awslambdaric's main thread may wait for the next event
in native code (awslambdaric issue 105) until the kill.

Blocking SIGTERM and ``sigwait``-ing for it in a thread would work, but a
signal mask is inherited through fork *and* exec: every child the function
starts (``subprocess``, ``os.posix_spawn``, ``multiprocessing``) would ignore
``terminate()``. So the mask is left alone and the signal's *C-level*
delivery is used instead:

- a Python handler is installed for SIGTERM, so CPython's C handler runs in
  whichever thread the kernel picks, at once, even while the main thread
  sits in native code;
- that C handler writes the signal number to the wake-up fd
  (``signal.set_wakeup_fd``), the write end of a pipe whose read end a
  thread of ours waits on;
- the thread saves, then lets SIGTERM take the course it had when this was
  installed: the default action ends the process with SIGTERM's status; a
  handler installed before us is called by ours, in the main thread, as
  Python runs handlers. If the function installs its own SIGTERM handler
  later, the C handler still writes the pipe, so the snapshot is still
  saved, and the function's handler runs as it would without us.

Why the process ends through ``ctypes``: ``signal.signal`` works only in
the main thread, which may never run Python again before the kill. The
thread sets SIGTERM's disposition back to ``SIG_DFL`` with libc's
``signal()`` (dispositions are per process; Python's own table no longer
matters once the process is ending) and sends SIGTERM to itself, so the
process ends exactly as it would have without us.

Children: exec resets a handled signal to ``SIG_DFL``, which is what it
was; the pipe is close-on-exec. A forked child (``os.fork``,
``multiprocessing``'s fork and forkserver) inherits the handler and the
pipe, so a fork hook gives it back the disposition and wake-up fd it had
before and closes the pipe. The signal mask is never touched.

Not saved, as without us nothing would run either: a process that ignored
SIGTERM before this was installed (its exec'd children must keep ignoring
it, so nothing is installed), a function that sets ``SIG_IGN`` or
``SIG_DFL`` for SIGTERM itself, or a function that blocks SIGTERM in every
thread to ``sigwait`` for it. If a wake-up fd was already set (asyncio's
``add_signal_handler``), every byte is passed on to it, so its handlers
keep running; if the function sets its own later, ours still hears SIGTERM
from our Python handler whenever the main thread runs Python.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

#: Longest wait for the save SIGTERM started, before a handler from before
#: ours runs and at interpreter exit (the shutdown deadline is 2 s in all).
SAVE_WAIT_SECONDS = 2.0
#: Written by us at interpreter exit: no signal has the number 0.
_DRAIN = 0

_lock = threading.Lock()
_watcher: _SigtermWatcher | None = None
_fork_hook_registered = False

Disposition = Callable[[int, FrameType | None], Any] | int | signal.Handlers | None


class _SigtermWatcher:
    """The pipe, the thread that reads it, and what SIGTERM meant before we came."""

    def __init__(self, save: Callable[[], None], original: Disposition) -> None:
        self.save = save
        self.original = original
        self.read_fd, self.write_fd = os.pipe()
        # set_wakeup_fd needs a non-blocking fd; the reader may block.
        os.set_blocking(self.write_fd, False)
        self.previous_wakeup_fd = -1
        #: A duplicate of a wake-up fd that was there before ours: it stays
        #: the same pipe or socket even if its owner closes the number.
        self.forward_fd = -1
        self.received = threading.Event()
        self.saved = threading.Event()
        #: Set once the thread has read past :data:`_DRAIN`.
        self.drained = threading.Event()
        # One bound method, so that getsignal() can be compared with it.
        self.handler: Callable[[int, FrameType | None], None] = self.on_sigterm

    def install(self) -> None:
        threading.Thread(target=self.run, name="coverage-sigterm", daemon=True).start()
        self.previous_wakeup_fd = signal.set_wakeup_fd(self.write_fd, warn_on_full_buffer=False)
        if self.previous_wakeup_fd != -1:
            with contextlib.suppress(OSError):
                self.forward_fd = os.dup(self.previous_wakeup_fd)
        signal.signal(signal.SIGTERM, self.handler)

    def on_sigterm(self, signum: int, frame: FrameType | None) -> None:
        """The Python-level handler (main thread): the course SIGTERM had before us."""
        # The wake-up fd normally told the thread already; this covers a
        # wake-up fd the function replaced after us. Never blocks.
        with contextlib.suppress(OSError):
            os.write(self.write_fd, bytes([signum]))
        if callable(self.original):
            # Save first, as without us the handler may end the process at
            # once. Bounded: this runs wherever the main thread was, which
            # may hold a lock the save is waiting for.
            self.saved.wait(SAVE_WAIT_SECONDS)
            self.original(signum, frame)

    def run(self) -> None:
        while True:
            try:
                data = os.read(self.read_fd, 512)
            except OSError:
                return
            if not data:
                return
            if self.forward_fd != -1:
                with contextlib.suppress(OSError):
                    os.write(self.forward_fd, data)
            if signal.SIGTERM in data and not self.received.is_set():
                self.received.set()
                self.take_sigterm()
            if _DRAIN in data:
                self.drained.set()
                return

    def take_sigterm(self) -> None:
        try:
            with contextlib.suppress(Exception):
                self.save()
        finally:
            self.saved.set()
        # A handler the function installed instead of ours runs as it would
        # without us; a callable from before us is called by ours.
        if signal.getsignal(signal.SIGTERM) == self.handler and self.original == signal.SIG_DFL:
            _end_process_by_sigterm()

    def detach_in_child(self) -> None:
        """In a forked child: SIGTERM's disposition and wake-up fd as before us, no pipe."""
        with contextlib.suppress(ValueError, OSError, TypeError):
            if signal.getsignal(signal.SIGTERM) == self.handler:
                signal.signal(signal.SIGTERM, self.original)
        with contextlib.suppress(ValueError, OSError):
            current = signal.set_wakeup_fd(-1)
            if current != self.write_fd:
                # The function's own, set after ours: the child keeps it.
                signal.set_wakeup_fd(current)
            elif self.previous_wakeup_fd != -1:
                signal.set_wakeup_fd(self.previous_wakeup_fd)
        for fd in (self.read_fd, self.write_fd, self.forward_fd):
            if fd != -1:
                with contextlib.suppress(OSError):
                    os.close(fd)


def _end_process_by_sigterm() -> None:
    """End the process as SIGTERM's default action does, from any thread."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.signal.argtypes = (ctypes.c_int, ctypes.c_void_p)
        libc.signal.restype = ctypes.c_void_p
        libc.signal(int(signal.SIGTERM), None)  # NULL is SIG_DFL
    except (ImportError, OSError, AttributeError):
        # No way to reset the disposition: end with the status a shell
        # reports for SIGTERM.
        os._exit(128 + signal.SIGTERM)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
    signal.pthread_kill(threading.get_ident(), signal.SIGTERM)


def _after_fork_in_child() -> None:
    global _watcher  # the child has no watcher thread
    watcher, _watcher = _watcher, None
    if watcher is not None:
        watcher.detach_in_child()


def _wait_for_save_at_exit() -> None:
    # A handler of the function's may end the interpreter (sys.exit) before
    # the thread has even read SIGTERM's byte. The pipe keeps order: once
    # the thread reads this byte, a SIGTERM written before it is saved.
    watcher = _watcher
    if watcher is None:
        return
    try:
        os.write(watcher.write_fd, bytes([_DRAIN]))
    except OSError:
        return
    watcher.drained.wait(SAVE_WAIT_SECONDS)


def save_on_sigterm(save: Callable[[], None]) -> bool:
    """Run ``save()`` when SIGTERM arrives, then let SIGTERM take its course.

    Must be called from the main thread; returns False (and changes nothing)
    elsewhere, when already installed in this process, or when SIGTERM is
    ignored or handled outside Python (there is no course to restore then).
    """
    global _watcher, _fork_hook_registered  # noqa: PLW0603 - one watcher per process
    with _lock:
        if _watcher is not None or threading.current_thread() is not threading.main_thread():
            return False
        original = signal.getsignal(signal.SIGTERM)
        if original is None or original == signal.SIG_IGN:
            return False
        watcher = _SigtermWatcher(save, original)
        if not _fork_hook_registered:
            os.register_at_fork(after_in_child=_after_fork_in_child)
            atexit.register(_wait_for_save_at_exit)
            _fork_hook_registered = True
        _watcher = watcher
        watcher.install()
        return True
