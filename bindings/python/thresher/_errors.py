"""The exception classes, one per thresher_status, and the check that turns a status into one."""

from __future__ import annotations

import ctypes
import enum

from . import _capi


class Status(enum.IntEnum):
    OK = _capi.THRESHER_OK
    END_OF_EPOCH = _capi.THRESHER_END_OF_EPOCH
    INVALID_ARGUMENT = _capi.THRESHER_INVALID_ARGUMENT
    IO = _capi.THRESHER_IO
    FORMAT = _capi.THRESHER_FORMAT
    STATE = _capi.THRESHER_STATE
    PANIC = _capi.THRESHER_PANIC


class NoisyLabelsWarning(UserWarning):
    """An epoch's plan keeps many samples that look unlearnable (wrong at each of their last
    `guard_window` correctness reports): the labels may be noisy, and a policy that keeps hard
    samples may be fitting them. Loader.unlearnable_fraction gives the figure."""


class Error(Exception):
    """A failed thresher call: `.status` is the thresher_status, `.message` the library's
    reason (thresher_last_error)."""

    status: Status = Status.PANIC

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.message = message
        if status is not None:
            # A status from a newer library than this binding knows stays a plain int.
            self.status = Status(status) if status in Status._value2member_map_ else status


# The builtin second bases let ordinary handlers (`except OSError`, `except ValueError`) work.
class InvalidArgument(Error, ValueError):
    status = Status.INVALID_ARGUMENT


class IoError(Error, OSError):
    status = Status.IO


class FormatError(Error, ValueError):
    status = Status.FORMAT


class StateError(Error, RuntimeError):
    status = Status.STATE


class PanicError(Error, RuntimeError):
    status = Status.PANIC


_BY_STATUS = {
    Status.INVALID_ARGUMENT: InvalidArgument,
    Status.IO: IoError,
    Status.FORMAT: FormatError,
    Status.STATE: StateError,
    Status.PANIC: PanicError,
}


def last_error() -> str:
    """This thread's last error message. ctypes calls run on the calling thread, so right after
    a failed call this is that call's message."""
    n = _capi.thresher_last_error(None, 0)
    if n == 0:
        return ""
    buf = ctypes.create_string_buffer(n + 1)
    _capi.thresher_last_error(buf, n + 1)
    return buf.value.decode("utf-8", errors="replace")


def error_for(status: int, message: str | None = None) -> Error:
    try:
        cls = _BY_STATUS[Status(status)]
    except (ValueError, KeyError):
        cls = Error
    if message is None:
        message = last_error() or f"thresher call failed with status {status}"
    return cls(message, status)


def check(status: int) -> int:
    """Raises the Error for a failed status; returns OK and END_OF_EPOCH unchanged."""
    if status in (_capi.THRESHER_OK, _capi.THRESHER_END_OF_EPOCH):
        return status
    raise error_for(status)
