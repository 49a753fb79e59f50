"""Turns what Loader() accepts (dict, JSON text, or a path to a JSON file) into a dict."""

from __future__ import annotations

import json
import math
import os
import stat
from typing import Any, Mapping, Union

from ._errors import FormatError, InvalidArgument, IoError

ConfigLike = Union[Mapping[str, Any], str, bytes, "os.PathLike[str]"]


class _Duplicate(ValueError):
    pass


def _unique(pairs: list) -> dict:
    # json.loads keeps the last of two equal keys silently; the library refuses them, and so
    # does this parse, before anything reaches the library.
    seen: dict = {}
    for key, value in pairs:
        if key in seen:
            raise _Duplicate(key)
        seen[key] = value
    return seen


def _parse(text: str, origin: str) -> dict:
    try:
        value = json.loads(text, object_pairs_hook=_unique)
    except _Duplicate as e:
        raise InvalidArgument(f"config{origin}: key `{e}` given twice") from None
    except json.JSONDecodeError as e:
        raise InvalidArgument(f"config{origin}: {e}") from None
    except RecursionError:
        raise InvalidArgument(f"config{origin}: JSON nested too deeply") from None
    if not isinstance(value, dict):
        raise InvalidArgument(f"config{origin}: expected a JSON object, got {type(value).__name__}")
    return value


def _jsonable(value: Any) -> Any:
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"{type(value).__name__} value {value!r} is not JSON")


def load(config: ConfigLike) -> dict:
    if isinstance(config, Mapping):
        # A copy, so later changes to the caller's dict do not change what state_dict() reports.
        try:
            return json.loads(json.dumps(dict(config), default=_jsonable))
        except (TypeError, ValueError) as e:
            raise InvalidArgument(f"config: {e}") from None
        except RecursionError:
            raise InvalidArgument("config: nested too deeply") from None
    if isinstance(config, bytes):
        try:
            config = config.decode("utf-8")
        except UnicodeDecodeError as e:
            raise InvalidArgument(f"config: not UTF-8 text: {e}") from None
    if isinstance(config, str) and config.lstrip().startswith("{"):
        return _parse(config, "")
    if isinstance(config, (str, os.PathLike)):
        path = os.fspath(config)
        return _parse(_read_config_file(path), f" file {path}")
    raise InvalidArgument(
        f"config: expected a dict, a JSON string or a path, got {type(config).__name__}"
    )


# A config file is a few kilobytes; this bounds the read of a huge file given by mistake.
MAX_CONFIG_FILE_BYTES = 16 << 20


def _read_config_file(path) -> str:
    """The text of a config file: only a regular file, opened non-blocking (a FIFO would block
    open() forever, /dev/zero never end) and checked on the opened descriptor."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as e:
        raise IoError(f"config file {path}: {e.strerror or e}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise FormatError(f"config file {path}: not a regular file")
        if st.st_size > MAX_CONFIG_FILE_BYTES:
            raise InvalidArgument(
                f"config file {path}: {st.st_size} bytes, more than the "
                f"{MAX_CONFIG_FILE_BYTES} a config file may have"
            )
        with os.fdopen(fd, "rb", closefd=True) as f:
            fd = -1
            data = f.read(MAX_CONFIG_FILE_BYTES + 1)
    except OSError as e:
        raise IoError(f"config file {path}: {e.strerror or e}") from None
    finally:
        if fd >= 0:
            os.close(fd)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InvalidArgument(f"config file {path}: not UTF-8 ({e})") from None


def dumps(config: dict) -> str:
    try:
        # NaN and infinity are not JSON; the library would reject them less clearly.
        return json.dumps(config, allow_nan=False)
    except ValueError as e:
        where = _non_finite(config, "")
        if where is not None:
            key, value = where
            raise InvalidArgument(f"config key `{key}`: {value} is not a finite number") from None
        raise InvalidArgument(f"config: {e}") from None


def _non_finite(value: Any, path: str):
    """The dotted key (`[i]` for list items) and value of the first NaN or infinity in
    `value`, or None."""
    if isinstance(value, float) and not math.isfinite(value):
        return path or "config", value
    items = value.items() if isinstance(value, dict) else (
        ((f"[{i}]", v) for i, v in enumerate(value)) if isinstance(value, list) else ()
    )
    for key, item in items:
        key = str(key)  # json.dumps writes int and float keys as strings too
        sub = f"{path}{key}" if key.startswith("[") else (f"{path}.{key}" if path else key)
        found = _non_finite(item, sub)
        if found is not None:
            return found
    return None
