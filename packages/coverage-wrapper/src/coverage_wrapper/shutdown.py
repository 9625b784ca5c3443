"""Save the last snapshot when Lambda shuts the sandbox down, without a Python signal handler.

With an extension registered, Lambda sends SIGTERM to the runtime and gives
it up to 300 ms before SHUTDOWN goes to the extensions. A Python signal
handler cannot be relied on there: it runs only in the main thread, between
bytecodes, and awslambdaric's main thread waits for the next event in native
code (awslambdaric issue 105). So SIGTERM is blocked in the main thread (and
every thread started after it inherits the block) and a thread of its own
takes it with ``signal.sigwait``, saves, and then lets SIGTERM do what it
would have done without us: the process's disposition (default: terminate,
a handler the function installed, or ignore) applies as before.

Threads that existed before :func:`save_on_sigterm` ran keep SIGTERM
unblocked; the kernel may hand the signal to one of them instead, and then
the last snapshot is not saved. In zero-code mode the wrapper installs this
at init, before the function's code runs.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable

_installed = False
_lock = threading.Lock()


def save_on_sigterm(save: Callable[[], None]) -> bool:
    """Run ``save()`` when SIGTERM arrives, then let SIGTERM take its course.

    Must be called from the main thread; returns False (and changes nothing)
    elsewhere or when already installed in this process.
    """
    global _installed  # noqa: PLW0603 - one SIGTERM thread per process
    with _lock:
        if _installed or threading.current_thread() is not threading.main_thread():
            return False
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
        threading.Thread(
            target=_wait_for_sigterm, args=(save,), name="coverage-sigterm", daemon=True
        ).start()
        _installed = True
        return True


def _wait_for_sigterm(save: Callable[[], None]) -> None:
    # The thread was started with SIGTERM blocked, as sigwait requires.
    signal.sigwait({signal.SIGTERM})
    with contextlib.suppress(Exception):
        save()
    # Deliver SIGTERM again, to this thread alone, now unblocked: the
    # default action ends the process with the status SIGTERM gives, and a
    # handler of the function's is run as Python runs handlers.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
    signal.pthread_kill(threading.get_ident(), signal.SIGTERM)
