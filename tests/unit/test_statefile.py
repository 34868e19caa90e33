"""State files: damage stops the open naming the file and what to do for it; a full disk gives
the real error; the disk reserve gives the alarm journal room on a full disk."""

from __future__ import annotations

import importlib
import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from safety_hub.errors import DiskFullError, SinkError, StateFileError
from safety_hub.ingest.spool import Spool
from safety_hub.statefile import QUICK_CHECK_MAX_BYTES, DiskReserve
from tests.fixtures.tmpfs import SmallFs, mounted_tmpfs, small_tmpfs_fixture  # noqa: F401
from tests.unit.test_alarms_support import Rig

REPO = Path(__file__).resolve().parents[2]

# file name -> (the class that opens it, what its damage advice must say)
STORES: dict[str, tuple[str, tuple[str, ...]]] = {
    "spool.sqlite": ("safety_hub.ingest.spool:Spool", (".recover", "readings not yet written")),
    "alarms.sqlite": (
        "safety_hub.alarms:AlarmJournal",
        (".recover", "system of record", "alarm history"),
    ),
    "engine.sqlite": (
        "safety_hub.runtime.alarm_runtime:SqliteSnapshotStore",
        ("rule engine starts fresh",),
    ),
    "outbox.sqlite": ("safety_hub.runtime.outbox:Outbox", ("alarm events not yet published",)),
    "readings.sqlite": ("connectors.influx:SqliteStore", (".recover", "readings history")),
}


def store_class(name: str) -> Callable[[Path], Any]:
    module, attr = STORES[name][0].split(":")
    opener: Callable[[Path], Any] = getattr(importlib.import_module(module), attr)
    return opener


def make(path: Path) -> Path:
    """A good state file of the kind its name says, closed again."""
    store_class(path.name)(path).close()
    return path


def open_store(path: Path) -> StateFileError:
    with pytest.raises(StateFileError) as caught:
        store_class(path.name)(path)
    assert caught.value.path == str(path)
    assert str(path) in str(caught.value)
    return caught.value


def write_garbage(path: Path) -> None:
    path.write_bytes(b"these are not the bytes of a database\n" * 200)


def truncate(path: Path) -> None:
    os.truncate(path, path.stat().st_size // 2)


def overwrite_page_2(path: Path) -> None:
    with path.open("r+b") as f:
        header = f.read(100)
        page_size = int.from_bytes(header[16:18], "big")  # the file's own: the spool's is 16 KB
        f.seek(65536 if page_size == 1 else page_size)
        f.write(bytes(range(256)) * 16)


def put_directory(path: Path) -> None:
    path.unlink()
    path.mkdir()
    (path / "something").write_text("x")


DAMAGE: dict[str, tuple[Callable[[Path], None], str]] = {
    "garbage": (write_garbage, "not an SQLite database"),
    "truncated": (truncate, "damaged SQLite file"),
    "malformed page": (overwrite_page_2, "damaged SQLite file"),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
@pytest.mark.parametrize("name", list(STORES))
def test_a_damaged_file_stops_the_open_naming_the_file_and_the_way_out(
    tmp_path: Path, name: str, damage: str
) -> None:
    """Garbage, a truncated file or a malformed page: StateFileError naming the file, the
    problem, and the advice for that store (salvage with .recover, or what moving it loses)."""
    path = make(tmp_path / name)
    spoil, problem = DAMAGE[damage]
    spoil(path)
    error = open_store(path)
    assert problem in error.problem
    for words in STORES[name][1]:
        assert words in error.advice
    assert "aside" in error.advice


@pytest.mark.parametrize("name", list(STORES))
def test_a_directory_in_the_files_place_is_named_as_such(tmp_path: Path, name: str) -> None:
    """A directory where the file belongs: the error says so and to move it out of the way."""
    path = make(tmp_path / name)
    put_directory(path)
    error = open_store(path)
    assert error.problem == "is a directory, not a database file"
    assert "Move that directory out of the way" in error.advice


def _open_without_file_permissions(path: Path) -> dict[str, str]:
    """Open the store in a child process that file permissions bind: as root, one without
    CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH (root ignores mode 000 otherwise)."""
    code = (
        "import importlib, json, sys\n"
        "from pathlib import Path\n"
        "from safety_hub.errors import StateFileError\n"
        "module, attr = sys.argv[1].split(':')\n"
        "try:\n"
        "    getattr(importlib.import_module(module), attr)(Path(sys.argv[2]))\n"
        "    print(json.dumps({'opened': 'yes'}))\n"
        "except StateFileError as exc:\n"
        "    print(json.dumps({'path': exc.path, 'problem': exc.problem, 'advice': exc.advice}))\n"
    )
    command = [sys.executable, "-c", code, STORES[path.name][0], str(path)]
    if os.geteuid() == 0:
        drop = "-dac_override,-dac_read_search"
        command = ["setpriv", "--inh-caps", drop, "--bounding-set", drop, *command]
    done = subprocess.run(command, capture_output=True, text=True, cwd=REPO, timeout=60)
    assert done.returncode == 0, done.stderr
    result: dict[str, str] = json.loads(done.stdout)
    return result


@pytest.mark.parametrize("name", list(STORES))
def test_a_file_the_hub_may_not_read_says_permission_denied(tmp_path: Path, name: str) -> None:
    """chmod 000: the error names the file, says permission denied, and how to give access."""
    path = make(tmp_path / name)
    path.chmod(0)
    try:
        result = _open_without_file_permissions(path)
    finally:
        path.chmod(0o600)
    assert result.get("path") == str(path), result
    assert result["problem"].startswith("permission denied")
    assert "mode 0000" in result["problem"]
    assert "read and write access" in result["advice"]


@pytest.mark.parametrize("name", list(STORES))
def test_another_kind_of_database_is_not_taken_for_this_one(tmp_path: Path, name: str) -> None:
    """A database of another kind in the file's place (a mix-up of files) is refused by name."""
    other = "alarms.sqlite" if name != "alarms.sqlite" else "spool.sqlite"
    make(tmp_path / other).rename(tmp_path / name)
    error = open_store(tmp_path / name)
    assert error.problem.startswith("not a ")
    assert "SAFETY_HUB_DATA_DIR" in error.advice


def test_a_foreign_database_is_left_exactly_as_it_was(tmp_path: Path) -> None:
    """Someone's own SQLite file in the spool's place is refused without a byte changed (not
    even switched to WAL)."""
    path = tmp_path / "spool.sqlite"
    with closing(sqlite3.connect(path)) as raw, raw:
        raw.execute("CREATE TABLE notes (text TEXT)")
        raw.execute("INSERT INTO notes VALUES ('mine')")
    before = path.read_bytes()
    error = open_store(path)
    assert (
        error.problem
        == "not a spool: it holds table(s) notes, none of alarm_marker, batch, dead_letter"
    )
    assert path.read_bytes() == before
    assert not (tmp_path / "spool.sqlite-wal").exists()


# file name -> (PRAGMA synchronous: 1 NORMAL, 2 FULL; busy_timeout in ms)
PRAGMAS = {
    "spool.sqlite": (2, 10_000),
    "alarms.sqlite": (2, 5_000),
    "engine.sqlite": (1, 5_000),
    "outbox.sqlite": (1, 5_000),
    "readings.sqlite": (1, 5_000),
}


@pytest.mark.parametrize("name", list(STORES))
def test_each_store_gets_wal_and_its_own_sync_and_busy_timeout(tmp_path: Path, name: str) -> None:
    """Every state file is in WAL mode; the journal and spool sync fully, the outbox (recovered
    from the journal), the engine snapshot and the readings store at NORMAL; the spool waits
    longest for a lock."""
    store = store_class(name)(tmp_path / name)
    conn = store._write_conn if name == "spool.sqlite" else store._conn
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    got = (
        conn.execute("PRAGMA synchronous").fetchone()[0],
        conn.execute("PRAGMA busy_timeout").fetchone()[0],
    )
    assert got == PRAGMAS[name]
    store.close()


def test_the_spools_sync_setting_applies_to_both_its_connections(tmp_path: Path) -> None:
    """Spool(sync="normal") (the SAFETY_HUB_SPOOL_SYNC setting) reaches the reader too."""
    spool = Spool(tmp_path / "spool.sqlite", sync="normal")
    for conn in (spool._write_conn, spool._read_conn):
        assert conn.execute("PRAGMA synchronous").fetchone() == (1,)
    spool.close()


def test_a_journal_of_an_unknown_schema_version_is_refused(tmp_path: Path) -> None:
    """A journal another safety-hub version wrote: named, with its version, never migrated."""
    path = make(tmp_path / "alarms.sqlite")
    with closing(sqlite3.connect(path)) as raw:
        raw.execute("PRAGMA user_version = 7")
    error = open_store(path)
    assert error.problem == "schema version 7; this hub knows version 1 of the alarm journal"
    with closing(sqlite3.connect(path)) as raw:
        assert raw.execute("PRAGMA user_version").fetchone() == (7,)


def test_a_table_missing_a_column_is_refused(tmp_path: Path) -> None:
    """A file with the right table but not its columns is not used (nor written to)."""
    path = tmp_path / "spool.sqlite"
    with closing(sqlite3.connect(path)) as raw:
        raw.execute("CREATE TABLE batch (id INTEGER PRIMARY KEY, lines TEXT)")
    error = open_store(path)
    assert error.problem == (
        "not a spool this hub can use: table batch has no column(s) created_ms, n, bytes"
    )


def test_an_outbox_from_before_the_marker_gets_it(tmp_path: Path) -> None:
    """A file missing only a newer table is ours: the table is added, the rows are kept."""
    path = tmp_path / "outbox.sqlite"
    with closing(sqlite3.connect(path)) as raw, raw:
        raw.execute(
            "CREATE TABLE outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT NOT NULL, "
            "payload BLOB NOT NULL, created_ms INTEGER NOT NULL)"
        )
        raw.execute("INSERT INTO outbox (topic, payload, created_ms) VALUES ('t', x'01', 5)")
    box = store_class("outbox.sqlite")(path)
    assert box.pending() == [(1, "t", b"\x01", 5)]
    assert box.marker() is None
    box.set_marker(3)
    assert box.marker() == 3
    box.close()


def _big_spool(path: Path) -> Spool:
    spool = Spool(path, sync="normal")
    line = "x" * 1024 * 1024
    while path.stat().st_size <= QUICK_CHECK_MAX_BYTES + 1024 * 1024:
        spool.append([(line, 1)] * 4, created_ms=1)
    return spool


def test_damage_at_the_end_of_a_big_spool_is_found_without_reading_it_all(
    tmp_path: Path,
) -> None:
    """Past QUICK_CHECK_MAX_BYTES the open reads the ends of each table: a spool whose
    newest rows are damaged is still refused at start."""
    path = tmp_path / "spool.sqlite"
    _big_spool(path).close()
    size = path.stat().st_size
    assert size > QUICK_CHECK_MAX_BYTES
    with path.open("r+b") as f:  # the last pages hold the newest row's leaf and overflow
        f.seek(size - 8 * 4096)
        f.write(bytes(range(256)) * 16 * 8)
    error = open_store(path)
    assert "damaged SQLite file" in error.problem


def test_a_truncated_big_spool_is_refused(tmp_path: Path) -> None:
    """A big spool cut short (a copy that stopped half way) is refused, not half read."""
    path = tmp_path / "spool.sqlite"
    _big_spool(path).close()
    truncate(path)
    assert "damaged SQLite file" in open_store(path).problem


def test_a_failed_write_leaves_no_transaction_and_keeps_its_own_error(tmp_path: Path) -> None:
    """An error inside a write transaction is rolled back and reaches the caller unchanged."""
    rig = Rig(tmp_path / "alarms.sqlite")
    journal = rig.journal

    with pytest.raises(RuntimeError, match="not SQLite's"), journal._transaction() as cursor:
        cursor.execute("INSERT INTO suppressions VALUES ('k', 'c', 1)")
        raise RuntimeError("not SQLite's")
    assert not journal._conn.in_transaction
    assert journal._conn.execute("SELECT COUNT(*) FROM suppressions").fetchone() == (0,)


# -- full disk ---------------------------------------------------------------------------------

BIG = "y" * 200_000  # more than any slack left in the WAL file's last page


def _write(name: str, store: Any, n: int) -> None:
    """One write of the store's own kind, big enough to need new pages."""
    if name == "spool.sqlite":
        store.append([(BIG, 1)], created_ms=n)
    elif name == "alarms.sqlite":
        store.on(f"Alert{n}|e01-chloralkali|GT-1101", value=1.0)
    elif name == "engine.sqlite":
        store.save({"n": n, "state": BIG})
    elif name == "outbox.sqlite":
        store.put("hazard/v1/e01/alarms", BIG.encode(), n)
    else:
        store.write(f"other,k=v{n} text={json.dumps(BIG)} {n}")


def _open_for_writing(name: str, path: Path) -> Any:
    return Rig(path) if name == "alarms.sqlite" else store_class(name)(path)


@pytest.mark.parametrize("name", list(STORES))
def test_a_full_disk_gives_the_real_error_and_writes_work_again_after(
    small_tmpfs: SmallFs, name: str
) -> None:
    """On a full tmpfs each store's write fails with "database or disk is full" naming the file
    (not SQLite's "cannot rollback"), and succeeds again once space is freed, without reopening."""
    path = small_tmpfs.path / name
    store = _open_for_writing(name, path)
    _write(name, store, 1)
    small_tmpfs.fill()
    assert small_tmpfs.free_bytes() == 0
    expected = DiskFullError if name != "readings.sqlite" else SinkError
    with pytest.raises(expected) as caught:
        _write(name, store, 2)
    message = str(caught.value)
    assert str(path) in message and "database or disk is full" in message
    assert "cannot rollback" not in message
    small_tmpfs.unfill()
    _write(name, store, 3)
    (store.journal if name == "alarms.sqlite" else store).close()


def test_the_disk_reserve_lets_the_alarm_journal_commit_on_a_full_disk(
    small_tmpfs: SmallFs,
) -> None:
    """With the disk full the journal cannot commit; release() frees the reserve and the same
    alarm then commits; restore() waits until there is room for the reserve and its headroom."""
    reserve = DiskReserve(small_tmpfs.path, 1024 * 1024)
    assert not reserve.released
    rig = Rig(small_tmpfs.path / "alarms.sqlite")
    small_tmpfs.fill()
    key = "HighPressure|e01-chloralkali|PT-2001"
    with pytest.raises(
        DiskFullError, match=r"alarms\.sqlite: alarm journal: database or disk is full"
    ):
        rig.on(key, value=1.9)
    assert rig.svc.list() == []
    assert reserve.release()
    assert reserve.released
    assert reserve.free_bytes() >= 1024 * 1024
    rig.on(key, value=1.9)
    assert [a.key for a in rig.journal.load().alarms] == [key]
    assert not reserve.restore()  # the freed space is the alarms' now
    small_tmpfs.unfill()
    assert reserve.restore()
    assert not reserve.released
    assert reserve.path.stat().st_blocks * 512 >= 1024 * 1024
    rig.journal.close()


def test_the_disk_reserve_is_really_allocated_and_kept_across_restarts(tmp_path: Path) -> None:
    """The reserve's blocks are allocated (not a sparse file); a second start keeps the file."""
    reserve = DiskReserve(tmp_path, 2 * 1024 * 1024)
    st = reserve.path.stat()
    assert st.st_size == 2 * 1024 * 1024
    assert st.st_blocks * 512 >= 2 * 1024 * 1024
    again = DiskReserve(tmp_path, 2 * 1024 * 1024)
    assert not again.released
    assert again.path.stat().st_ino == st.st_ino


def test_release_frees_the_space_at_once(small_tmpfs: SmallFs) -> None:
    """Released, the reserve's bytes are free on the filesystem immediately."""
    reserve = DiskReserve(small_tmpfs.path, 1024 * 1024)
    before = reserve.free_bytes()
    assert reserve.release()
    assert reserve.free_bytes() - before >= 1024 * 1024
    assert not reserve.release()  # nothing left to free


def test_a_reserve_without_room_is_not_made_and_says_so(small_tmpfs: SmallFs) -> None:
    """On a nearly full disk the reserve is not made (it would fill it): released is True."""
    small_tmpfs.fill()
    small_tmpfs.unfill(keep_bytes=small_tmpfs.size_bytes - 1536 * 1024)
    reserve = DiskReserve(small_tmpfs.path, 1024 * 1024)
    assert reserve.released
    assert not reserve.path.exists()
    assert not list(small_tmpfs.path.glob("disk-reserve*"))
    small_tmpfs.unfill()
    assert reserve.restore()


def test_a_zero_reserve_is_off(tmp_path: Path) -> None:
    """Size 0 disables the reserve: no file, nothing to release, never 'released'."""
    reserve = DiskReserve(tmp_path, 0)
    assert not reserve.path.exists()
    assert not reserve.released and not reserve.release() and reserve.restore()


def test_the_tmpfs_fallback_without_root_fills_a_real_filesystem(tmp_path: Path) -> None:
    """Where mount is refused (a process without privileges), the fixture's fallback still
    gives a real tmpfs of the asked size that the spool finds full, and removes it after."""
    code = (
        "import json, os, sys\n"
        "from pathlib import Path\n"
        "from safety_hub.errors import DiskFullError\n"
        "from safety_hub.ingest.spool import Spool\n"
        "from tests.fixtures.tmpfs import mounted_tmpfs\n"
        "where = Path(sys.argv[1])\n"
        "with mounted_tmpfs(where, 2 * 1024 * 1024) as fs:\n"
        "    st = os.statvfs(fs.path)\n"
        "    spool = Spool(fs.path / 'spool.sqlite')\n"
        "    fs.fill()\n"
        "    try:\n"
        "        spool.append([('y' * 200_000, 1)], created_ms=1)\n"
        "        error = None\n"
        "    except DiskFullError as exc:\n"
        "        error = str(exc)\n"
        "    spool.close()\n"
        "    inside = sorted(os.listdir(fs.path))\n"
        "print(json.dumps({'method': fs.method, 'size': st.f_blocks * st.f_frsize,\n"
        "    'error': error, 'inside': inside, 'after': sorted(os.listdir(where))}))\n"
    )
    command = [sys.executable, "-c", code, str(tmp_path / "fs")]
    if os.geteuid() == 0:  # root without CAP_SYS_ADMIN: mount(8) is refused as for a user
        drop = "-sys_admin"
        command = ["setpriv", "--inh-caps", drop, "--bounding-set", drop, *command]
    done = subprocess.run(command, capture_output=True, text=True, cwd=REPO, timeout=120)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["method"] == "namespace"
    assert result["size"] == 2 * 1024 * 1024
    assert "spool.sqlite: spool: database or disk is full" in result["error"]
    assert {"filler", "spool.sqlite"} <= set(result["inside"])
    assert result["after"] == []  # it was all on the tmpfs, none on the disk beneath
