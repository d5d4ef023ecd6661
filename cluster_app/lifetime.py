"""A node process that ends when the process that started it ends.

`runcluster` starts the gateway and the workers in sessions of their own (so
Ctrl-C in the terminal reaches only `runcluster`, which stops them in order).
The price is that nothing else stops them: if `runcluster` is killed, they
would keep running, holding ports, the state directory and the terminal.
`runcluster` therefore passes `--parent-pid` to its children, and each child:

- asks Linux for a signal when its parent dies (`prctl(PR_SET_PDEATHSIG)`).
  The kernel sends it when the *thread* that forked the child exits, so the
  parent must start its children from a thread that lives as long as it does
  (`runcluster` starts them from its main thread);
- and watches the parent pid itself (pidfd, else polling), which covers
  other systems, a parent that died before the prctl took effect, and a
  graceful stop that hangs: a while after the parent is gone the process
  exits regardless.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import select
import signal
import sys
import threading
import time

log = logging.getLogger("ww.lifetime")

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
_POLL_SECONDS = 0.5


def stop_with_parent(parent_pid: int, *, signum: int = signal.SIGTERM, grace: float) -> None:
    """Deliver `signum` to this process when `parent_pid` exits, and end the
    process outright `grace` seconds later if it is still running then."""
    is_parent = os.getppid() == parent_pid
    armed = is_parent and _arm_pdeathsig(signum)
    # The parent may have died between fork and the prctl: then we have been
    # re-parented already and the kernel will never send the signal.
    if armed and os.getppid() != parent_pid:
        armed = False
    threading.Thread(
        target=_watch,
        args=(parent_pid, is_parent, armed, signum, grace),
        name="parent-watch",
        daemon=True,
    ).start()


def _arm_pdeathsig(signum: int) -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(PR_SET_PDEATHSIG, signum, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def _watch(parent_pid: int, is_parent: bool, armed: bool, signum: int, grace: float) -> None:
    _wait_gone(parent_pid, is_parent)
    log.warning("parent process %d is gone: stopping", parent_pid)
    if not armed:
        with contextlib.suppress(ProcessLookupError):
            os.kill(os.getpid(), signum)
    time.sleep(grace)
    # The graceful stop did not end the process; nobody is left to stop it.
    log.error("still running %.0f s after the parent process ended: exiting now", grace)
    os._exit(1)


def _wait_gone(pid: int, is_parent: bool) -> None:
    if not _alive(pid, is_parent) or _wait_pidfd(pid):
        return
    while _alive(pid, is_parent):
        time.sleep(_POLL_SECONDS)


def _wait_pidfd(pid: int) -> bool:
    """Block until `pid` exits, by pidfd; False where pidfds are unavailable."""
    pidfd_open = getattr(os, "pidfd_open", None)
    if pidfd_open is None:
        return False
    try:
        fd = pidfd_open(pid)
    except ProcessLookupError:
        return True
    except OSError:
        return False
    try:
        select.select([fd], [], [])  # readable once the process has exited
    finally:
        os.close(fd)
    return True


def _alive(pid: int, is_parent: bool) -> bool:
    # A dead parent may linger as a zombie (kill(pid, 0) still succeeds), but
    # we are re-parented the moment it dies.
    if is_parent:
        return os.getppid() == pid
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
