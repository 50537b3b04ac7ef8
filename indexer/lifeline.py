"""Worker processes die with the process that started them.

A SIGKILLed indexer runs no clean-up, so its decoding workers (children of the ``forkserver``, not of
the indexer) would otherwise wait on their task queue forever. ``die_with(owner)``, called in each
worker's initializer, makes the worker end as soon as ``owner`` ends: a daemon thread waits on a pidfd
of ``owner`` (Linux >= 5.3; elsewhere it polls once a second), and ``PR_SET_PDEATHSIG`` makes Linux
kill the worker when its own parent (the forkserver) goes. The forkserver exits by itself once no
process holds its control pipe, and the resource tracker once no process holds its pipe.
"""

from __future__ import annotations

import ctypes
import os
import select
import signal
import threading
import time

PR_SET_PDEATHSIG = 1


def die_with(owner: int) -> None:
    """End this process with SIGKILL once process ``owner`` has ended (at once if it already has)."""
    _kill_on_parent_death()
    try:
        handle = os.pidfd_open(owner)
    except ProcessLookupError:
        os.kill(os.getpid(), signal.SIGKILL)
        return
    except (AttributeError, OSError):  # no pidfd on this system: poll
        threading.Thread(target=_poll_owner, args=(owner,), daemon=True, name="lifeline").start()
        return
    threading.Thread(target=_wait_owner, args=(handle,), daemon=True, name="lifeline").start()


def _kill_on_parent_death() -> None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux
        pass


def _wait_owner(handle: int) -> None:
    select.select([handle], [], [])  # a pidfd becomes readable when its process ends
    os.kill(os.getpid(), signal.SIGKILL)


def _poll_owner(owner: int) -> None:
    while True:
        try:
            os.kill(owner, 0)
        except ProcessLookupError:
            os.kill(os.getpid(), signal.SIGKILL)
        except PermissionError:  # alive, under another user (the pid was reused)
            pass
        time.sleep(1.0)
