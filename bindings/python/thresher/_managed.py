"""Managed: a Python object owning one C handle, released exactly once (wasmtime-py's
`_managed.py` pattern): by close(), by leaving a `with` block, or by the garbage collector."""

from __future__ import annotations

import abc

from ._errors import StateError


class Managed(abc.ABC):
    _ptr = None
    # Set by subclasses: what the handle is called in the use-after-close message.
    _what = "object"

    @abc.abstractmethod
    def _delete(self, ptr) -> None:
        """Releases the C handle `ptr` (thresher_loader_free, thresher_batch_release)."""

    def _take(self, ptr) -> None:
        self._ptr = ptr

    def ptr(self):
        """The live handle; a closed object raises instead of handing NULL to C, which would
        at best be an InvalidArgument and at worst a use-after-free."""
        ptr = self._ptr
        if ptr is None:
            raise StateError(f"{self._what} is closed")
        return ptr

    @property
    def closed(self) -> bool:
        return self._ptr is None

    def close(self) -> None:
        # Swap first so a second close (or __del__ after close) never frees twice.
        ptr, self._ptr = self._ptr, None
        if ptr is not None:
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
