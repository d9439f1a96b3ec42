"""`--state-file`: the file format, reading it back, and writing it atomically. Knows no component.

The file is one JSON document: a header (`format`, `version`, the emulator's version, and the options the
state only makes sense with) around `state`, which is whatever the backend's components said in their
`state()` (see `Backend.state`) and get back through their `restore()`. A file written by another format
version, or with other such options, is refused with a `StateError` naming the file and the reason.

`Saver` is the periodic and shutdown save. Reading live state and encoding it is `Saver.prepare`, one
synchronous step on the event loop (a consistent instant, and nothing else touches the state meanwhile);
only `write_atomic(path, bytes)` runs in a worker thread: a temporary file in the same folder, flushed and
fsynced, renamed over the old one, then the folder fsynced. A save of the state the last one wrote is
skipped (compared before encoding, see store.py's saved forms), so an idle emulator does not rewrite its file.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import stat
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import orjson

from emulator import __version__, jsonio
from emulator.scenarios import ScenarioError

FORMAT = "aep-emulator-state"
VERSION = 2  # 2: each component's state under its own key (1 was laid out by persistence itself)
# The options in a file's "compatibility", and the flag that sets each (for the refusal's wording).
FLAGS = {"seed": "--seed", "clock": "--clock", "speed": "--speed"}
# A larger file is refused unread (100,000 jobs save to about 60 MB).
MAX_STATE_FILE_BYTES = 1024 * 1024 * 1024
LOCK_SUFFIX = ".lock"

# Checks a decoded document against the state file's schema: None, or what is wrong with it.
Check = Callable[[Any], str | None]

log = logging.getLogger("emulator.persistence")


class StateError(Exception):
    """A state file that cannot be used; the message names the file and the reason."""

    def __init__(self, path: Path | str, reason: str):
        super().__init__(f"state file {path}: {reason}")
        self.path = str(path)
        self.reason = reason


class Stateful(Protocol):
    """What is saved: the backend (it composes its components' states)."""

    def state(self) -> dict[str, Any]:
        """Everything a restart keeps, as JSON-able data."""
        ...

    def compatibility(self) -> dict[str, Any]:
        """The options (keys of FLAGS) that state only makes sense with."""
        ...

    def summary(self) -> str:
        """What the state holds, for the log: "2 datasets, 3 jobs, ..."."""
        ...


# -- the format -----------------------------------------------------------------------------------------


def encode(state: Mapping[str, Any], compatibility: Mapping[str, Any]) -> bytes:
    """The file's content: the header around `state`, in one encoding."""
    return jsonio.dumps(
        {
            "format": FORMAT,
            "version": VERSION,
            "emulator": __version__,
            "compatibility": compatibility,
            "state": state,
        }
    )


def decode(
    raw: bytes, source: Path | str, compatibility: Mapping[str, Any], check: Check | None = None
) -> dict[str, Any]:
    """The state in a file's content, checked against the header, then against the schema (`check`);
    StateError when it cannot be used."""
    if not raw:
        raise StateError(source, "the file is empty (delete it to start from an empty state)")
    try:
        document = orjson.loads(raw)  # strict UTF-8 and JSON, as the file is written
    except orjson.JSONDecodeError as exc:
        raise StateError(source, f"not valid JSON, the file is corrupt ({exc})") from None
    check_header(document, source)
    problem = check(document) if check is not None else None
    if problem is not None:
        raise StateError(source, f"malformed state: {problem}")
    with restoring(source):
        _check_compatible(document["compatibility"], compatibility, source)
        state = document["state"]
        if not isinstance(state, dict):
            raise TypeError("state is not an object")
    return state


def check_header(document: Any, source: Path | str) -> None:
    if not isinstance(document, Mapping) or document.get("format") != FORMAT:
        raise StateError(source, f'not an aep-emulator state file (no "format": "{FORMAT}")')
    version = document.get("version")
    if version != VERSION:
        raise StateError(
            source,
            f"state format version {version!r} is not supported (this emulator reads version {VERSION})",
        )


def _check_compatible(saved: Mapping[str, Any], current: Mapping[str, Any], source: Path | str) -> None:
    for key, flag in FLAGS.items():
        if saved[key] != current[key]:
            raise StateError(
                source,
                f"saved with {flag} {saved[key]}, started with {flag} {current[key]}: "
                "start with the same value, or with another state file",
            )


@contextlib.contextmanager
def restoring(source: Path | str) -> Iterator[None]:
    """Turns what a component's `restore()` raises on a state it cannot take into one StateError."""
    try:
        yield
    except ScenarioError as exc:
        raise StateError(source, f"a saved scenario no longer loads: {exc}") from None
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        raise StateError(source, f"malformed state ({type(exc).__name__}: {exc})") from None


# -- the file -------------------------------------------------------------------------------------------


def resolve(path: Path) -> Path:
    """The file a state file path names. A symbolic link is followed (to its target, even one that does
    not exist yet): saves replace the target, atomically in the target's folder, and the link stays."""
    return Path(os.path.realpath(path))


def load(path: Path, compatibility: Mapping[str, Any], check: Check | None = None) -> dict[str, Any] | None:
    """The state in the file (a resolved path), None when there is no file yet; StateError when it cannot
    be used: not a regular file (a device such as /dev/zero, a FIFO, a folder), larger than
    MAX_STATE_FILE_BYTES, unreadable, or a document that breaks the format or the schema."""
    try:
        # Non-blocking: opening a FIFO must not wait for a writer (it is refused below).
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        if not path.parent.is_dir():
            raise StateError(path, f"folder {path.parent} does not exist") from None
        return None
    except OSError as exc:
        raise StateError(path, f"cannot read: {exc.strerror or exc}") from None
    info = os.fstat(descriptor)
    problem = None
    if not stat.S_ISREG(info.st_mode):
        problem = "not a regular file (a folder, device, FIFO or socket): name a file"
    elif info.st_size > MAX_STATE_FILE_BYTES:
        problem = f"{info.st_size} bytes, over the limit of {MAX_STATE_FILE_BYTES} bytes"
    if problem is not None:
        os.close(descriptor)
        raise StateError(path, problem)
    with os.fdopen(descriptor, "rb") as file:
        try:
            raw = file.read(MAX_STATE_FILE_BYTES + 1)
        except OSError as exc:
            raise StateError(path, f"cannot read: {exc.strerror or exc}") from None
    if len(raw) > MAX_STATE_FILE_BYTES:  # it grew while read
        raise StateError(path, f"over the limit of {MAX_STATE_FILE_BYTES} bytes")
    return decode(raw, path, compatibility, check)


class StateLock:
    """An exclusive lock on a state file, held for a server's life: a second emulator on the same file
    would overwrite the first one's saves. It is an flock() on `<file>.lock` beside the file (the file
    itself is replaced by every save), so the kernel releases it when the process ends, even when killed.
    The lock file stays: removing it would let two processes lock two different files of that name."""

    def __init__(self, path: Path):
        self.path = path
        self.lock_path = path.with_name(path.name + LOCK_SUFFIX)
        try:
            descriptor = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
        except FileNotFoundError:
            raise StateError(path, f"folder {path.parent} does not exist") from None
        except OSError as exc:
            raise StateError(path, f"cannot create the lock file {self.lock_path}: {exc.strerror}") from None
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(descriptor)
            raise StateError(
                path,
                f"in use by another running aep-emulator (it holds {self.lock_path}); stop it, or start "
                "with another --state-file",
            ) from None
        self._descriptor: int | None = descriptor

    def release(self) -> None:
        if self._descriptor is not None:
            os.close(self._descriptor)  # closing the descriptor releases the lock
            self._descriptor = None


def write_atomic(path: Path, data: bytes) -> None:
    """Readers see the old file or the new one, never a part: write aside, fsync, rename, fsync the folder.
    Blocking, and given only bytes: the one part of a save that runs in a worker thread."""
    folder = path.parent
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    folder_descriptor = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(folder_descriptor)
    finally:
        os.close(folder_descriptor)


def stale_temporaries(path: Path) -> Iterable[Path]:
    """Temporary files a killed writer left beside the state file."""
    return path.parent.glob(f".{path.name}.*.tmp")


@dataclass(frozen=True)
class Save:
    """One save, prepared on the event loop: where, the bytes, and what they hold (the state, the summary
    for the log)."""

    path: Path
    data: bytes
    state: dict[str, Any]
    summary: str


class Saver:
    """Saves `source`'s state to `path` when it differs from what the last successful save wrote."""

    def __init__(self, source: Stateful, path: Path, lock: StateLock | None = None):
        self.source = source
        self.path = path
        self.lock = lock  # released by close(), after the last save
        self.failed = False  # the last save failed: the file is older than the state
        self._on_disk: dict[str, Any] | None = None  # the state the last successful save wrote

    def prepare(self) -> Save | None:
        """The next save, or None when the file holds this state already. Reads live state: call it on the
        event loop, and use its result before the loop runs anything else."""
        state = self.source.state()
        # Mostly the same objects as last time: the comparison is identity checks, until a change.
        if state == self._on_disk:
            return None
        return Save(self.path, encode(state, self.source.compatibility()), state, self.source.summary())

    def written(self, save: Save) -> None:
        self.failed = False
        self._on_disk = save.state
        log.info("state saved to %s: %s (%d bytes)", save.path, save.summary, len(save.data))

    def not_written(self, error: Exception) -> None:
        """A save that failed; the next one tries again (the file on disk is untouched)."""
        self.failed = True
        if isinstance(error, OSError):
            log.error("cannot save the state to %s: %s", self.path, error.strerror or error)
        else:
            log.error("cannot save the state to %s", self.path, exc_info=error)

    def close(self) -> None:
        if self.lock is not None:
            self.lock.release()

    def clean_stale(self) -> None:
        for stale in stale_temporaries(self.path):
            with contextlib.suppress(OSError):
                stale.unlink()
