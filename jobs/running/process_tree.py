"""A run is a process tree: the processes a job's command starts end with its run.

A command runs inside a worker's pool process (or ``runjob``'s own). Whatever it starts — a
``subprocess.Popen`` it never waited for, a shell's grandchildren, a child that called
``setsid()`` to leave the worker's process group — is found by its parent chain (psutil), not
by its process group, and ended when the run ends: on success, failure, time limit or stop.

On Linux the running process becomes a "child subreaper" (``prctl(PR_SET_CHILD_SUBREAPER)``):
an orphan whose parent died (``sh -c "sleep 300 &"``, or a child a time limit killed) is
re-parented to it rather than to init, so it stays on the chain and is found too.

Only processes that were not there when the run started are ended: never the process itself,
nor anything older (``processes_owned``).
"""

from __future__ import annotations

import ctypes
import logging
import os
import sys
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import psutil

logger = logging.getLogger(__name__)

# From <linux/prctl.h>.
PR_SET_CHILD_SUBREAPER = 36
# Seconds a process is given between SIGTERM and SIGKILL.
TERMINATE_GRACE_SECONDS = 3.0


# The process that became a subreaper: the setting holds for the process (a forked child
# starts without it), so each process asks once.
_subreaper_pid: int | None = None


def subreaper_become() -> None:
    """Keep orphaned descendants on this process's chain (Linux; elsewhere nothing changes)."""
    global _subreaper_pid
    if not sys.platform.startswith("linux") or _subreaper_pid == os.getpid():
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        logger.warning("could not become child subreaper (errno %s)", ctypes.get_errno())
        return
    _subreaper_pid = os.getpid()


def descendants(pid: int | None = None) -> list[psutil.Process]:
    """Every process below ``pid`` (this process by default) by parent chain, whatever its group."""
    try:
        return psutil.Process(pid or os.getpid()).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def has_children() -> bool:
    """Whether this process has a child, as the kernel lists them per thread
    (``/proc/<pid>/task/<tid>/children``, proc(5)): a few small reads, where psutil's walk reads
    the status of every process on the machine. A descendant always has a child of this process
    above it (an orphan is re-parented here: ``subreaper_become``), so no child means none at
    all. True where the kernel offers no such file: the caller then walks the tree."""
    pid = os.getpid()
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as children:
                if children.read().strip():
                    return True
    except OSError:  # not Linux, no CONFIG_PROC_CHILDREN, or a thread that just ended
        return True
    return False


def processes_end(processes: Iterable[psutil.Process], *, grace: float = TERMINATE_GRACE_SECONDS) -> list[int]:
    """SIGTERM each process, SIGKILL those still there after ``grace`` seconds; the PIDs ended.

    psutil checks a process's start time before it signals it, so a PID reused meanwhile by an
    unrelated process is left alone. Exited children of this process are reaped.
    """
    targets = []
    for process in processes:
        try:
            process.terminate()
        except psutil.NoSuchProcess:  # gone already (or a zombie: reaped below)
            pass
        except psutil.AccessDenied:
            continue
        targets.append(process)
    _, alive = psutil.wait_procs(targets, timeout=grace)
    for process in alive:
        try:
            process.kill()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    psutil.wait_procs(alive, timeout=grace)
    return [process.pid for process in targets]


def descendants_end(*, pid: int | None = None, spare: Iterable[int] = (), grace: float = TERMINATE_GRACE_SECONDS):
    """End every descendant of ``pid`` (this process by default) but those in ``spare``.

    What a cancel calls for a run in its worker's pool process, and ``processes_owned`` at a
    run's end. Returns the PIDs ended.
    """
    spared = set(spare)
    ended = processes_end([p for p in descendants(pid) if p.pid not in spared], grace=grace)
    if ended:
        logger.info("ended %d process(es) a run left behind: %s", len(ended), ended)
    return ended


@contextmanager
def processes_owned(*, grace: float = TERMINATE_GRACE_SECONDS) -> Iterator[None]:
    """Run the block as a process tree: every process it started that is still there when it
    ends (however it ends) is ended with it. Processes older than the block are spared.

    Only on the main thread (a prefork pool process, ``runjob``): where threads run several
    runs side by side in one process, nothing tells one run's processes from another's, so
    none is ended here."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    subreaper_become()
    before = {process.pid for process in descendants()} if has_children() else set()
    try:
        yield
    finally:
        # Most runs start no process: then there is nothing to walk, let alone end.
        if has_children():
            descendants_end(spare=before, grace=grace)
