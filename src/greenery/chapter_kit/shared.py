"""Results two chapters of one report both need, computed once: the first chapter computes, the others read.

The promos and indicators chapters both test every trait of a first order (Cox fits, log-rank tests and
the permutation tests of the window sweep: the family adjustment needs every p-value), about a second on
the real export and 24 CPU seconds at sample scale 100, each. `greenery report` runs its chapters in
separate processes, two at a time, and hands each a folder of this report's own, in its staging folder
(it lives as long as the report and is removed with it): `share_through(folder)`, called by the chapter's
runner (greenery.publisher.chapter_process) with the folder it was given as an argument, never from an
environment variable a shell or a notebook server could pass on. In it, `@once_per_report` functions
keep their results as JSON:

- keyed by everything a result depends on: the function, its arguments (the data frames' every value,
  byte for byte, the parameters) and the code (the chapter kit's source, the numerical libraries'
  versions), so a result is never reused for other data, other parameters or other code (a result
  computed from queries can be keyed by what they read instead: the warehouse's build, the SQL and its
  parameters, so that the chapter reading it runs none of them: indicators.sweep_windows);
- written through a temporary file and one rename (a reader sees the whole result or none), under a lock
  on the folder, so a second chapter asking while the first computes waits for it (at most WAIT_SECONDS,
  then computes it itself: the same result) rather than computing it twice;
- read back to the very same frame (columns, dtypes, every value and the type of each object), or not
  at all: a file that does not decode exactly is ignored and the result computed.

Without the folder (a chapter run alone, `make baselines`, the tests) such a function simply runs.
JSON, not pickle: reading a result never runs code.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the publisher imports this module: numpy and pandas are imported where used
    import pandas as pd

_folder: Path | None = None  # this report's folder for shared results (share_through); None: nothing is shared
WAIT_SECONDS = 120.0  # the longest a chapter waits for another to finish computing a result
_POLL_SECONDS = 0.02
_PACKAGE = Path(__file__).resolve().parent


class _NotShareable(Exception):
    """A value this module cannot key or store exactly: the result is computed, never shared."""


@functools.cache
def _code() -> str:
    """The chapter kit's own code and the versions of the libraries its statistics come from."""
    import numpy as np
    import pandas as pd
    import scipy
    import statsmodels

    hasher = hashlib.sha256()
    for path in sorted(_PACKAGE.glob("*.py")):
        hasher.update(path.name.encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    for module in (np, pd, scipy, statsmodels):
        hasher.update(f"{module.__name__}=={module.__version__}\0".encode())
    return hasher.hexdigest()


# --------------------------------------------------------------------------- exact encoding

@functools.cache
def _scalars() -> dict[type, str]:
    import numpy as np

    return {type(None): "none", bool: "bool", int: "int", float: "float", str: "str",
            np.float64: "float64", np.int64: "int64", np.bool_: "bool_"}


def _scalar(value) -> list:
    """A scalar as [type, value]: JSON keeps a float's every bit (repr) and NaN; the type comes back too."""
    import numpy as np

    name = _scalars().get(type(value))
    if name is None:
        raise _NotShareable(type(value).__name__)
    if name == "none":
        return [name]
    plain = value.item() if isinstance(value, np.generic) else value
    return [name, plain]


def _unscalar(item: list):
    import numpy as np

    name = item[0]
    if name == "none":
        return None
    value = item[1]
    expected = {"bool": bool, "int": int, "float": float, "str": str, "float64": float, "int64": int,
                "bool_": bool}[name]
    if type(value) is not expected and not (expected is float and type(value) is int):
        raise ValueError(f"{name} expected, got {type(value).__name__}")
    return {"float64": np.float64, "int64": np.int64, "bool_": np.bool_}.get(name, expected)(value)


def encode_frame(frame: pd.DataFrame) -> dict:
    """A data frame with a plain 0..n-1 index as JSON-ready data that `decode_frame` rebuilds exactly."""
    import numpy as np
    import pandas as pd

    if not isinstance(frame, pd.DataFrame):
        raise _NotShareable(type(frame).__name__)
    if not isinstance(frame.index, pd.RangeIndex) or frame.index.start != 0 or frame.index.step != 1:
        raise _NotShareable("index")
    if not all(isinstance(c, str) for c in frame.columns) or frame.columns.has_duplicates:
        raise _NotShareable("columns")
    columns = []
    for name in frame.columns:
        column = frame[name]
        dtype = str(column.dtype)
        if column.dtype.kind in "biuf" and isinstance(column.dtype, np.dtype):
            values = column.to_numpy().tolist()  # Python scalars: a float's repr round-trips exactly
        elif dtype in ("object", "str"):
            values = [_scalar(v) for v in column.to_numpy(dtype=object, na_value=None)] if dtype == "str" \
                else [_scalar(v) for v in column.tolist()]
        else:
            raise _NotShareable(dtype)
        columns.append({"name": name, "dtype": dtype, "values": values})
    return {"rows": len(frame), "columns": columns}


def decode_frame(data: dict) -> pd.DataFrame:
    """The frame `encode_frame` encoded; ValueError (or a KeyError, TypeError) when `data` is not one."""
    import numpy as np
    import pandas as pd

    rows = data["rows"]
    if type(rows) is not int:
        raise ValueError("rows")
    built = {}
    for column in data["columns"]:
        name, dtype, values = column["name"], column["dtype"], column["values"]
        if type(name) is not str or name in built or type(values) is not list or len(values) != rows:
            raise ValueError("column")
        if dtype in ("object", "str"):
            built[name] = pd.Series([_unscalar(v) for v in values], dtype=dtype, index=pd.RangeIndex(rows))
        elif dtype in ("int64", "int32", "float64", "bool"):
            kind = {"int64": int, "int32": int, "float64": float, "bool": bool}[dtype]
            if not all(type(v) is kind or (kind is float and type(v) is int) for v in values):
                raise ValueError(f"{name}: {dtype} expected")
            built[name] = pd.Series(np.array(values, dtype=dtype), index=pd.RangeIndex(rows))
        else:
            raise ValueError(f"{name}: dtype {dtype}")
    return pd.DataFrame(built, index=pd.RangeIndex(rows))


def _key_parts(value, hasher) -> None:
    """Feed `value` to the hash unambiguously: every part typed and length-prefixed."""
    import numpy as np
    import pandas as pd

    def part(tag: str, data: bytes) -> None:
        hasher.update(tag.encode() + len(data).to_bytes(8, "little") + data)

    if isinstance(value, pd.DataFrame):
        part("frame", json.dumps([str(value.index.dtype), len(value), list(map(str, value.columns)),
                                  [str(t) for t in value.dtypes]]).encode())
        part("index", value.index.to_numpy().tobytes() if value.index.dtype.kind in "biuf" else
             json.dumps([_scalar(v) for v in value.index.tolist()]).encode())
        for name in value.columns:
            column = value[name]
            if isinstance(column.dtype, np.dtype) and column.dtype.kind in "biuf":
                part("values", np.ascontiguousarray(column.to_numpy()).tobytes())
            elif str(column.dtype) == "str":  # text or missing only: its distinct values and each row's (fast)
                codes, uniques = pd.factorize(column, use_na_sentinel=True)
                part("texts", json.dumps(list(uniques)).encode())
                part("codes", np.ascontiguousarray(codes, dtype=np.int64).tobytes())
            elif str(column.dtype) == "object":  # anything: each value with its type (1, 1.0 and True differ)
                part("values", json.dumps([_scalar(v) for v in column.tolist()]).encode())
            else:
                raise _NotShareable(str(column.dtype))
    elif isinstance(value, dict):
        part("dict", str(len(value)).encode())
        for key, item in value.items():  # in order: an order that differs may give another result
            _key_parts(key, hasher)
            _key_parts(item, hasher)
    elif isinstance(value, list | tuple):
        part(type(value).__name__, str(len(value)).encode())
        for item in value:
            _key_parts(item, hasher)
    else:
        part("scalar", json.dumps(_scalar(value)).encode())


def key(name: str, args: tuple, kwargs: dict) -> str:
    """What a result depends on, as one sha256: the function, its arguments, the code."""
    hasher = hashlib.sha256()
    _key_parts([name, _code()], hasher)
    _key_parts(list(args), hasher)
    _key_parts(dict(sorted(kwargs.items())), hasher)
    return hasher.hexdigest()


# --------------------------------------------------------------------------- the folder

def _read(path: Path) -> pd.DataFrame | None:
    """The result stored at `path`, or None: missing, not a regular file, or not exactly a result."""
    from greenery.outputs.ownership import read_own

    data = read_own(path)
    if data is None:
        return None
    try:
        return decode_frame(json.loads(data))
    except (ValueError, KeyError, TypeError, IndexError, OverflowError, RecursionError):  # nested past the parser
        return None


@contextlib.contextmanager
def _locked(folder: Path, deadline: float):
    """The folder's lock (flock on the folder itself: no lock file), or none once `deadline` has passed."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    break  # computed without the lock: the same result, at worst computed twice
                time.sleep(_POLL_SECONDS)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def share_through(folder: Path | None) -> None:
    """Share results through `folder` in this process from now on (None: share nothing). Only the chapter
    runner calls it, with the folder the report made in its own staging folder; a link or anything but a
    folder there shares nothing."""
    global _folder
    _folder = folder if folder is not None and not folder.is_symlink() and folder.is_dir() else None


def computed(name: str, function: Callable[..., pd.DataFrame], *args, **kwargs) -> pd.DataFrame:
    """`function(*args, **kwargs)`, computed once per report: read from the report's shared folder when a
    chapter already computed it with these very arguments and this code, else computed and stored there."""
    folder = _folder
    if folder is None:
        return function(*args, **kwargs)
    try:
        digest = key(name, args, kwargs)
    except _NotShareable:
        return function(*args, **kwargs)
    folder_path = Path(folder)
    path = folder_path / f"{name}-{digest[:32]}.json"
    found = _read(path)
    if found is not None:
        return found
    try:
        lock = _locked(folder_path, time.monotonic() + WAIT_SECONDS)
        lock.__enter__()
    except OSError:  # no folder to lock (removed, or not a folder): nothing to share through
        return function(*args, **kwargs)
    try:
        found = _read(path)  # computed by the chapter that held the lock
        if found is not None:
            return found
        result = function(*args, **kwargs)
        try:
            text = json.dumps(encode_frame(result), allow_nan=True, separators=(",", ":"))
        except _NotShareable:
            return result
        from greenery.outputs import atomic

        with contextlib.suppress(OSError):  # a full disk costs the other chapter the computation, nothing else
            atomic.write_text(path, text)
        return result
    finally:
        lock.__exit__(None, None, None)


def once_per_report(function: Callable[..., pd.DataFrame]) -> Callable[..., pd.DataFrame]:
    """Make `function` (returning a data frame) computed once per report across its chapters (`computed`)."""
    name = f"{function.__module__.rpartition('.')[2]}.{function.__qualname__}"

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        return computed(name, function, *args, **kwargs)

    wrapper.compute = function  # the function itself, never shared (tests compare the two)
    return wrapper

