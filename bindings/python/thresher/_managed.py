"""Managed: a Python object owning one C handle, released exactly once (wasmtime-py's
`_managed.py` pattern): by close(), by leaving a `with` block, or by the garbage collector.

A handle belongs to the process that made it. After os.fork() the child has a copy of the
Python object but not the library's worker threads, and a lock some thread held at the fork
stays held in the child for good: a child's call would block forever. So in a child every use
raises StateError, and releasing the handle leaves the child's copy alone (freeing it would
wait for threads that do not exist there). ProcessLock is a lock with the same guard.
"""

from __future__ import annotations

import abc
import os
import threading

from ._errors import StateError


def forked_error(what: str, pid: int) -> StateError:
    return StateError(
        f"this {what} was created in process {pid} and cannot be used in process "
        f"{os.getpid()}, a child made by os.fork(): the library's threads and locks did not "
        f"survive the fork; create a new {what} in the child (or start processes with the "
        "'spawn' or 'forkserver' method)"
    )


class ProcessLock:
    """A re-entrant lock that raises StateError in a child made by os.fork() instead of
    blocking on a copy that another thread of the parent may have held at the fork."""

    def __init__(self, what: str):
        self._what = what
        self._pid = os.getpid()
        self._lock = threading.RLock()

    def __enter__(self) -> "ProcessLock":
        if os.getpid() != self._pid:
            raise forked_error(self._what, self._pid)
        self._lock.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self._lock.release()


class Managed(abc.ABC):
    _ptr = None
    _pid = None
    # Set by subclasses: what the handle is called in the use-after-close message.
    _what = "object"

    @abc.abstractmethod
    def _delete(self, ptr) -> None:
        """Releases the C handle `ptr` (thresher_loader_free, thresher_batch_release)."""

    def _take(self, ptr) -> None:
        self._ptr = ptr
        self._pid = os.getpid()

    def ptr(self):
        """The live handle; a closed object raises instead of handing NULL to C, which would
        at best be an InvalidArgument and at worst a use-after-free; so does an object used in
        a child process made by os.fork()."""
        ptr = self._ptr
        if ptr is None:
            raise StateError(f"{self._what} is closed")
        if self._pid != os.getpid():
            raise forked_error(self._what, self._pid)
        return ptr

    @property
    def closed(self) -> bool:
        return self._ptr is None

    def close(self) -> None:
        # Swap first so a second close (or __del__ after close) never frees twice.
        ptr, self._ptr = self._ptr, None
        # In a fork child the handle is the parent's: forgotten here, never freed.
        if ptr is not None and self._pid == os.getpid():
            self._delete(ptr)

    def __enter__(self):
        self.ptr()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            # At interpreter shutdown the module globals close() needs may already be gone;
            # the process is ending and the OS reclaims the memory.
            pass
