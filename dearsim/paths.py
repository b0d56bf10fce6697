"""Paths a user gives: one clear line for each thing that can be wrong with them.

A missing file, a folder where a file is expected (or the reverse), a special file (a FIFO,
a device: opening one could block forever or read without end), a file too large, a folder
that cannot be created or written: each is a :class:`~dearsim.errors.DearsimError` naming the
path and what it was for, never a traceback.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from . import _yaml
from .errors import DearsimError


def _why(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


def check_file(path: str | Path, what: str) -> Path:
    """``path`` as a readable regular file, or one line saying what is wrong with it."""
    p = Path(path)
    try:
        st = os.stat(p)
    except FileNotFoundError:
        raise DearsimError(f"{path}: {what} not found") from None
    except OSError as exc:
        raise DearsimError(f"{path}: cannot read {what}: {_why(exc)}") from None
    if stat.S_ISDIR(st.st_mode):
        raise DearsimError(f"{path}: is a directory, not a {what}")
    if not stat.S_ISREG(st.st_mode):
        raise DearsimError(f"{path}: not a regular file (a {what} must be one)")
    return p


def read_yaml_file(path: str | Path, what: str) -> str:
    """The text of a YAML (or CSVY) file given by a user: a regular file, at most
    :data:`dearsim._yaml.MAX_BYTES`, UTF-8."""
    p = check_file(path, what)
    try:
        return _yaml.read_text(p, what)
    except UnicodeDecodeError:
        raise DearsimError(f"{path}: not a text file (a {what} is UTF-8 YAML)") from None
    except OSError as exc:
        raise DearsimError(f"{path}: cannot read {what}: {_why(exc)}") from None


def read_bytes(path: str | Path, what: str, limit: int) -> bytes:
    """A regular file's bytes, refusing one larger than ``limit`` before reading it."""
    p = check_file(path, what)
    try:
        size = os.stat(p).st_size
        if size > limit:
            raise DearsimError(f"{path}: the {what} is {size:,} bytes; dearsim reads at most "
                               f"{limit:,}")
        with open(p, "rb") as f:
            return f.read(limit + 1)
    except OSError as exc:
        raise DearsimError(f"{path}: cannot read {what}: {_why(exc)}") from None


def make_folder(path: str | Path, what: str) -> Path:
    """Create folder ``path`` (and its parents) if needed; refuse a file or special file in
    the way and a folder that cannot be written."""
    p = Path(path)
    try:
        st = os.stat(p)
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise DearsimError(f"{path}: cannot use as {what}: {_why(exc)}") from None
    if st is not None and not stat.S_ISDIR(st.st_mode):
        raise DearsimError(f"{path}: is a file, not a folder (the {what} must be a folder)")
    if st is None:
        try:
            p.mkdir(parents=True, exist_ok=True)
        except FileExistsError:
            raise DearsimError(f"{path}: a part of this path is a file, not a folder") from None
        except NotADirectoryError:
            raise DearsimError(f"{path}: a part of this path is a file, not a folder") from None
        except OSError as exc:
            raise DearsimError(f"{path}: cannot create the {what}: {_why(exc)}") from None
    if not os.access(p, os.W_OK | os.X_OK):
        raise DearsimError(f"{path}: cannot write to the {what}: permission denied")
    return p


def check_output_file(path: str | Path, what: str) -> Path:
    """A file dearsim is about to write: its folder must exist (or be creatable) and be
    writable, and the path must not be a folder or a special file."""
    p = Path(path)
    try:
        st = os.stat(p)
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise DearsimError(f"{path}: cannot write the {what}: {_why(exc)}") from None
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise DearsimError(f"{path}: is a folder; give a file name for the {what}")
    if st is not None and not stat.S_ISREG(st.st_mode):
        raise DearsimError(f"{path}: not a regular file; dearsim writes the {what} only to "
                           "a regular file")
    make_folder(p.parent if str(p.parent) else Path("."), f"folder of the {what}")
    return p
