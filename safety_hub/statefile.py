"""The hub's SQLite state files: one way to open them, check them, write them, and keep room
for the alarms when the disk fills up.

Every state file (spool, alarm journal, engine snapshot, outbox, embedded readings store) opens
through :class:`StateFile`. Opening sets the pragmas the file needs and checks that it is a
readable SQLite database of the expected kind; a damaged, unreadable or foreign file raises
:class:`~safety_hub.errors.StateFileError` naming the file, the problem and what to do for that
file (the CLI exits with code 2). Writes go through :meth:`StateFile.transaction`: a full disk
raises :class:`~safety_hub.errors.DiskFullError` naming the file, with the transaction rolled
back, instead of SQLite's later complaint that there is no transaction left to roll back.

What the check costs at start. ``PRAGMA quick_check`` reads every page. On a 1 GB spool (2 cores,
the virtual disk of these machines) it took 0.8-2.1 s with the file in the page cache and 27.7 s
right after the cache was dropped: the cold start after a long outage, which is when the spool
is that big. A hub must start fast then, so quick_check runs only on files of at most
``QUICK_CHECK_MAX_BYTES`` (engine snapshot, outbox, a young journal: at most about 0.5 s cold);
bigger files get the cheap check: the schema and the first and last row of each table
(1-4 ms cold on the same spool), which catches a foreign file, a damaged header or schema, a
truncated file and a damaged root or end of a table. Damage anywhere else shows up when that
page is read, as a StateFileError naming the file (see :meth:`StateFile.guard`).

:class:`DiskReserve` holds a file of zeros in the data directory; releasing it on a full disk
gives the alarm journal, the outbox and the engine snapshot room to commit at once.
"""

from __future__ import annotations

import logging
import os
import shlex
import sqlite3
import stat
import threading
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager, suppress
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

from safety_hub.errors import DiskFullError, StateFileError

log = logging.getLogger("safety_hub.statefile")

QUICK_CHECK_MAX_BYTES = 16 * 1024**2
"""files (with their WAL) up to this size get the full ``PRAGMA quick_check`` at open"""
DEFAULT_RESERVE_BYTES = 32 * 1024**2
"""the disk reserve's default size. Once released it takes the WAL files of the journal, the
outbox and the engine snapshot (each kept near SQLite's 1000-page auto-checkpoint, about 4 MiB)
and tens of thousands of new journal rows."""

_NO_ACCESS = frozenset(
    {sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_PERM, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_AUTH}
)
_IN_USE = frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED})
_MAX_PROBLEM_CHARS = 300
_DUMP_ERROR_TAIL = "ROLLBACK; -- due to errors"  # how the sqlite3 shell ends a damaged .dump
_FULL_BELOW_BYTES = 1024 * 1024  # an I/O error with less free space than this: the disk is full


@dataclass(frozen=True, slots=True)
class StateFileKind:
    """What a state file is: its schema, its pragmas, and what a damaged one costs.

    ``holds`` and ``if_moved_aside`` complete the sentences "It holds ..." and "Moving it aside:
    ...". ``salvage`` says that its rows are worth the sqlite3 command line's ``.recover``.
    """

    name: str
    schema: str  # CREATE ... IF NOT EXISTS statements, run when something is missing
    holds: str
    if_moved_aside: str
    salvage: bool
    synchronous: Literal["FULL", "NORMAL"] = "FULL"
    busy_timeout_ms: int = 5_000
    version: int | None = None  # PRAGMA user_version of the schema; None: not versioned
    # Pages the WAL may hold before SQLite checkpoints it (SQLite's default is 1000, about
    # 4 MB). The small files the alarms need on a full disk use less, so that their WALs stay
    # far inside the disk reserve (docs/storage.md, "Full disk").
    wal_autocheckpoint_pages: int = 1000
    # Overwrite deleted content with zeros (``PRAGMA secure_delete``)? None keeps SQLite's
    # build default, which is ON in some builds (Debian's among them): then every deleted row
    # is written again as zeros, to the WAL and at the checkpoint. "FAST" zeroes only what is
    # written anyway, for files whose content is no secret and is deleted in bulk (the spool).
    secure_delete: Literal["ON", "OFF", "FAST"] | None = None
    # The page size of a new file (``PRAGMA page_size``; SQLite's default is 4096). A file
    # that exists keeps the size it was made with. Larger pages suit a file of large rows
    # (the spool's rows are a message's lines, ~20 KB): fewer overflow pages to chain, write
    # and free per row.
    page_size: int | None = None


@dataclass(frozen=True, slots=True)
class _Expected:
    """The tables, columns and other objects a kind's schema creates, read from a scratch copy."""

    columns: dict[str, tuple[str, ...]]
    rowid_tables: frozenset[str]
    objects: frozenset[str]  # tables, indexes and triggers, by name


@lru_cache(maxsize=16)
def _expected(schema: str) -> _Expected:
    with closing(sqlite3.connect(":memory:")) as scratch:
        scratch.executescript(schema)
        objects = frozenset(_objects(scratch))
        columns: dict[str, tuple[str, ...]] = {}
        rowid: set[str] = set()
        for table in _tables(scratch):
            columns[table] = tuple(row[1] for row in scratch.execute(f"PRAGMA table_info({table})"))
            try:
                scratch.execute(f"SELECT rowid FROM {table} LIMIT 0")
                rowid.add(table)
            except sqlite3.OperationalError:
                pass  # a WITHOUT ROWID table
    return _Expected(columns, frozenset(rowid), objects)


def _tables(conn: sqlite3.Connection) -> list[str]:
    rows = conn.execute(
        "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite^_%' "
        "ESCAPE '^' ORDER BY name"
    ).fetchall()
    return [str(row[0]) for row in rows]


def _objects(conn: sqlite3.Connection) -> list[str]:
    rows = conn.execute(
        "SELECT name FROM sqlite_schema WHERE type IN ('table', 'index', 'trigger') "
        "AND name NOT LIKE 'sqlite^_%' ESCAPE '^'"
    ).fetchall()
    return [str(row[0]) for row in rows]


def _primary_code(exc: sqlite3.Error) -> int | None:
    code = getattr(exc, "sqlite_errorcode", None)
    return None if code is None else int(code) & 0xFF  # extended codes keep the primary in 8 bits


def free_bytes(directory: Path) -> int:
    """Bytes an unprivileged writer can still use on ``directory``'s filesystem (0 if unknown)."""
    try:
        st = os.statvfs(directory)
    except OSError:
        return 0
    return st.f_bavail * st.f_frsize


class StateFile:
    """One SQLite state file of a given kind: ``open()`` first, then ``connect()`` for more
    connections, ``transaction()`` for writes and ``guard()`` around other statements.

    ``":memory:"`` opens a private in-memory database with the same schema (tests).
    """

    def __init__(
        self,
        path: Path | str,
        kind: StateFileKind,
        *,
        synchronous: Literal["FULL", "NORMAL"] | None = None,
    ) -> None:
        self.in_memory = str(path) == ":memory:"
        self.path = Path(path)
        self.kind = kind
        self._synchronous = synchronous or kind.synchronous

    # -- opening -----------------------------------------------------------------------------
    def open(self) -> sqlite3.Connection:
        """The first connection: the file checked, its schema created or completed."""
        if not self.in_memory:
            self._probe()
        conn = self._connect(wal=False)
        try:
            if not self.in_memory:
                self._check(conn)
            # Only now: switching a file to WAL writes its header, and a foreign file must be
            # left as it was found. The page size takes effect only on a file still empty.
            if self.kind.page_size is not None:
                conn.execute(f"PRAGMA page_size={self.kind.page_size}")
            self._set_journal_mode(conn)
            self._ensure_schema(conn)
        except BaseException as exc:
            conn.close()
            if isinstance(exc, sqlite3.Error):
                raise self._open_error(exc) from exc
            raise
        return conn

    def connect(self) -> sqlite3.Connection:
        """Another connection to a file that :meth:`open` checked, with the same pragmas."""
        return self._connect()

    def _connect(self, *, wal: bool = True) -> sqlite3.Connection:
        target = ":memory:" if self.in_memory else self.path
        try:
            conn = sqlite3.connect(target, check_same_thread=False, isolation_level=None)
        except sqlite3.Error as exc:
            raise self._open_error(exc) from exc
        try:
            conn.execute(f"PRAGMA busy_timeout={self.kind.busy_timeout_ms}")
            if wal:
                self._set_journal_mode(conn)
        except sqlite3.Error as exc:
            conn.close()
            raise self._open_error(exc) from exc
        return conn

    def _set_journal_mode(self, conn: sqlite3.Connection) -> None:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={self._synchronous}")
        conn.execute(f"PRAGMA wal_autocheckpoint={self.kind.wal_autocheckpoint_pages}")
        if self.kind.secure_delete is not None:
            conn.execute(f"PRAGMA secure_delete={self.kind.secure_delete}")

    def _probe(self) -> None:
        """What the operating system says about the file, before SQLite's vaguer words for it."""
        path, parent = self.path, self.path.parent
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise self._error(
                f"its directory {parent} cannot be made ({exc.strerror})", self._access_advice()
            ) from exc
        try:
            st: os.stat_result | None = path.stat()
        except FileNotFoundError:
            st = None
        except OSError as exc:
            raise self._error(f"cannot be reached ({exc.strerror})", self._access_advice()) from exc
        if st is not None:
            if stat.S_ISDIR(st.st_mode):
                raise self._error(
                    "is a directory, not a database file",
                    f"Move that directory out of the way (the hub never writes into it); the hub "
                    f"then creates a new, empty {self.kind.name} there. If it holds the real "
                    f"file, put that file at {path} instead.",
                )
            if not stat.S_ISREG(st.st_mode):
                raise self._error("is not a regular file", self._foreign_advice())
        for candidate in (path, _sibling(path, "-wal"), _sibling(path, "-shm")):
            self._probe_access(candidate)
        if not os.access(parent, os.W_OK | os.X_OK):
            raise self._error(
                f"its directory {parent} is not writable for the hub (uid {os.geteuid()}), and "
                f"SQLite keeps the {path.name}-wal and -shm files there",
                self._access_advice(),
            )

    def _probe_access(self, candidate: Path) -> None:
        try:
            fd = os.open(candidate, os.O_RDWR)
        except FileNotFoundError:
            return
        except PermissionError as exc:
            raise self._error(
                f"permission denied{_of(candidate, self.path)}: the hub (uid {os.geteuid()}) "
                f"cannot read and write it ({_mode_and_owner(candidate)})",
                self._access_advice(),
            ) from exc
        except OSError as exc:
            raise self._error(
                f"cannot be opened for reading and writing{_of(candidate, self.path)} "
                f"({exc.strerror})",
                self._access_advice(),
            ) from exc
        os.close(fd)

    def _check(self, conn: sqlite3.Connection) -> None:
        kind, expected = self.kind, _expected(self.kind.schema)
        tables = _tables(conn)
        if kind.version is not None:
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            if version not in (0, kind.version):
                raise self._error(
                    f"schema version {version}; this hub knows version {kind.version} of the "
                    f"{kind.name}",
                    "Another safety-hub version wrote it: run that version, or move it aside "
                    f"(moving it aside: {kind.if_moved_aside}).",
                )
        ours = [t for t in tables if t in expected.columns]
        if tables and not ours:
            raise self._error(
                f"not a {kind.name}: it holds table(s) {', '.join(tables)}, none of "
                f"{', '.join(expected.columns)}",
                self._foreign_advice(),
            )
        for table in ours:
            have = {str(row[1]) for row in conn.execute(f"PRAGMA table_info({table})")}
            missing = [c for c in expected.columns[table] if c not in have]
            if missing:
                raise self._error(
                    f"not a {kind.name} this hub can use: table {table} has no column(s) "
                    f"{', '.join(missing)}",
                    self._foreign_advice(),
                )
        if self._size() <= QUICK_CHECK_MAX_BYTES:
            problems = [str(row[0]) for row in conn.execute("PRAGMA quick_check(10)")]
            if problems != ["ok"]:
                raise self._error(
                    f"damaged SQLite file (quick_check: {'; '.join(problems)})",
                    self._damage_advice(),
                )
            return
        for table in ours:  # too big to read whole at start: its b-tree's root and both ends
            conn.execute(f"SELECT * FROM {table} LIMIT 1").fetchall()
            if table in expected.rowid_tables:
                conn.execute(f"SELECT * FROM {table} ORDER BY rowid DESC LIMIT 1").fetchall()

    def _size(self) -> int:
        total = 0
        for candidate in (self.path, _sibling(self.path, "-wal")):
            with suppress(FileNotFoundError):
                total += candidate.stat().st_size
        return total

    def _ensure_schema(self, conn: sqlite3.Connection) -> None:
        """Create what is missing (a new file, or one from before a table was added); write
        nothing when all is there."""
        kind, version = self.kind, self.kind.version
        have = set(_objects(conn))
        current = None if version is None else conn.execute("PRAGMA user_version").fetchone()[0]
        if _expected(kind.schema).objects <= have and current == version:
            return
        stamp = "" if version is None else f"PRAGMA user_version = {version};\n"
        try:
            conn.executescript(f"BEGIN IMMEDIATE;\n{kind.schema}\n{stamp}COMMIT;")
        except BaseException as exc:
            _roll_back(conn, exc)
            raise

    # -- using -------------------------------------------------------------------------------
    @contextmanager
    def transaction(self, conn: sqlite3.Connection) -> Iterator[sqlite3.Cursor]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT``. On any error the transaction is rolled back if
        SQLite has not already done so, and the caller gets the real error: DiskFullError for a
        full disk, StateFileError for damage, any other error as it was."""
        with self.guard():
            cursor = conn.cursor()
            try:
                cursor.execute("BEGIN IMMEDIATE")
                yield cursor
                cursor.execute("COMMIT")
            except BaseException as exc:
                _roll_back(conn, exc)
                raise

    @contextmanager
    def guard(self) -> Iterator[None]:
        """Turn SQLite's full-disk and damage errors into errors naming this file."""
        try:
            yield
        except sqlite3.Error as exc:
            translated = self._use_error(exc)
            if translated is None:
                raise
            raise translated from exc

    def disk_full(self) -> DiskFullError:
        directory = self.path.parent
        return DiskFullError(
            str(self.path),
            f"{self.kind.name}: database or disk is full ({free_bytes(directory)} bytes free "
            f"in {directory})",
        )

    def _use_error(self, exc: sqlite3.Error) -> Exception | None:
        code = _primary_code(exc)
        if code == sqlite3.SQLITE_FULL or (
            # Growing the -shm file of a full disk fails as "disk I/O error" (IOERR_SHMSIZE),
            # at open too: with no room left that is a full disk, not a damaged file.
            code == sqlite3.SQLITE_IOERR
            and not self.in_memory
            and free_bytes(self.path.parent) < _FULL_BELOW_BYTES
        ):
            return self.disk_full()
        if code == sqlite3.SQLITE_NOTADB and not self.in_memory:
            return self._error(f"not an SQLite database (SQLite: {exc})", self._damage_advice())
        if code == sqlite3.SQLITE_CORRUPT and not self.in_memory:
            return self._error(f"damaged SQLite file (SQLite: {exc})", self._damage_advice())
        return None

    def _open_error(self, exc: sqlite3.Error) -> Exception:
        translated = self._use_error(exc)
        if translated is not None:
            return translated
        code = _primary_code(exc)
        if code in _NO_ACCESS:
            return self._error(f"cannot be opened (SQLite: {exc})", self._access_advice())
        if code in _IN_USE:
            return self._error(
                f"is in use by another process (SQLite: {exc})",
                "Another safety-hub, or a sqlite3 shell, has it open: stop that one first.",
            )
        if code == sqlite3.SQLITE_IOERR:
            return self._error(
                f"cannot be read (SQLite: {exc})",
                f"Check the disk and the kernel log (dmesg). {self._damage_advice()}",
            )
        return self._error(f"cannot be opened (SQLite: {exc})", self._damage_advice())

    # -- messages ----------------------------------------------------------------------------
    def _error(self, problem: str, advice: str) -> StateFileError:
        if len(problem) > _MAX_PROBLEM_CHARS:
            problem = problem[: _MAX_PROBLEM_CHARS - 3] + "..."
        return StateFileError(str(self.path), problem, advice)

    def _damage_advice(self) -> str:
        kind, path = self.kind, self.path
        aside = (
            f"move {path} and its -wal and -shm files aside (add .damaged to their names, for "
            "example)"
        )
        if not kind.salvage:
            return f"It holds {kind.holds}. With the hub stopped, {aside}: {kind.if_moved_aside}."
        source = shlex.quote(str(path))
        recovered = _sibling(path, ".recovered")
        target = shlex.quote(str(recovered))
        # Debian 12's sqlite3 is built without the dbpage table that .recover needs (it fails
        # with "SQL logic error"); .dump works there, but ends a dump that met damage with a
        # ROLLBACK that would throw away every row it did read.
        keep = shlex.quote(f"s/^{_DUMP_ERROR_TAIL}$/COMMIT;/")
        return (
            f"It holds {kind.holds}. With the hub stopped, salvage it with the sqlite3 command "
            f"line: sqlite3 {source} .recover | sqlite3 {target} (a sqlite3 without .recover, "
            f'such as Debian 12\'s, says "SQL logic error": use sqlite3 {source} .dump | sed '
            f"{keep} | sqlite3 {target} instead); then {aside} and rename {recovered.name} to "
            f"{path.name}. Moving it aside without salvaging it: {kind.if_moved_aside}."
        )

    def _access_advice(self) -> str:
        return (
            f"Give the user the hub runs as (uid {os.geteuid()}) read and write access to "
            f"{self.path}, its -wal and -shm files and its directory (chown or chmod), then "
            "start the hub again."
        )

    def _foreign_advice(self) -> str:
        return (
            f"It is not the hub's {self.kind.name}: move it out of the way, or point "
            f"SAFETY_HUB_DATA_DIR at the right directory; the hub then creates a new, empty "
            f"{self.kind.name}."
        )


def _roll_back(conn: sqlite3.Connection, exc: BaseException) -> None:
    """Roll back only a transaction that is still open: after SQLITE_FULL (and I/O errors)
    SQLite has often rolled back already, and a ROLLBACK then fails and would hide ``exc``."""
    try:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
    except sqlite3.Error as failed:
        exc.add_note(f"rolling back failed too: {failed}")


def _sibling(path: Path, suffix: str) -> Path:
    return path.with_name(path.name + suffix)


def _of(candidate: Path, path: Path) -> str:
    return "" if candidate == path else f" on {candidate.name}"


def _mode_and_owner(path: Path) -> str:
    try:
        st = path.stat()
    except OSError:
        return "mode unknown"
    return f"mode {stat.S_IMODE(st.st_mode):04o}, owner uid {st.st_uid}"


class DiskReserve:
    """Space held in the data directory as a file of zeros, for the alarms of a full disk.

    When the spool reports a full disk, :meth:`release` deletes the file: its space is free at
    once for the alarm journal, the outbox and the engine snapshot. :meth:`restore` takes it
    back only when ``size_bytes + headroom_bytes`` are free (headroom defaults to the size), so
    that taking it back does not fill the disk again at once. Neither raises: they return
    whether they did it. A size of 0 disables the reserve.
    """

    FILE_NAME = "disk-reserve"

    def __init__(
        self,
        data_dir: Path,
        size_bytes: int = DEFAULT_RESERVE_BYTES,
        *,
        headroom_bytes: int | None = None,
        on_change: Callable[[bool], None] | None = None,
    ) -> None:
        if size_bytes < 0:
            raise ValueError(f"disk reserve size_bytes={size_bytes}: must be 0 or more")
        self.path = data_dir / self.FILE_NAME
        self._data_dir = data_dir
        self._size = size_bytes
        self._headroom = size_bytes if headroom_bytes is None else headroom_bytes
        self._lock = threading.Lock()
        # Told ``held`` (True/False) after each change: the hub raises or clears ``disk_full``.
        self._on_change = on_change
        self._held = size_bytes == 0 or self._allocated() >= size_bytes
        if not self._held:
            self.restore()

    @property
    def size_bytes(self) -> int:
        return self._size

    @property
    def released(self) -> bool:
        """True while the reserve is not held (released, or never had the room to be made)."""
        return not self._held

    def free_bytes(self) -> int:
        return free_bytes(self._data_dir)

    def release(self) -> bool:
        """Delete the reserve file; True when that freed space."""
        with self._lock:
            if self._size == 0:
                return False
            try:
                self.path.unlink()
            except FileNotFoundError:
                self._held = False
                return False
            except OSError as exc:
                log.error("disk reserve %s could not be released: %s", self.path, exc)
                return False
            self._held = False
        self._changed(False)
        return True

    def _changed(self, held: bool) -> None:
        if self._on_change is not None:
            self._on_change(held)

    def restore(self) -> bool:
        """Allocate the reserve again if the disk has room for it and the headroom; True when
        the reserve is held afterwards."""
        with self._lock:
            if self._held:
                return True
            if self.free_bytes() < self._size + self._headroom:
                return False
            partial = _sibling(self.path, ".partial")
            try:
                fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                try:
                    # Really allocated, not a sparse file: deleting it must free the space.
                    os.posix_fallocate(fd, 0, self._size)
                finally:
                    os.close(fd)
                os.replace(partial, self.path)
            except OSError as exc:
                log.warning("disk reserve %s not restored: %s", self.path, exc)
                with suppress(OSError):
                    partial.unlink(missing_ok=True)
                return False
            self._held = True
        self._changed(True)
        return True

    def _allocated(self) -> int:
        try:
            return self.path.stat().st_blocks * 512
        except OSError:
            return 0
