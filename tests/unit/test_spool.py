"""The durable spool: append, read, remove, dead-letter, survive a killed process and a full disk."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from safety_hub.errors import DiskFullError
from safety_hub.ingest.spool import Spool
from tests.fixtures.tmpfs import SmallFs, small_tmpfs_fixture  # noqa: F401


def test_append_peek_remove_and_depth(tmp_path: Path) -> None:
    """Batches come out oldest first; depth follows appends and removals."""
    spool = Spool(tmp_path / "s.sqlite")
    spool.append([("a1\na2", 2), ("b1", 1), ("", 0)], created_ms=1000)
    depth = spool.depth()
    assert (depth.batches, depth.readings, depth.oldest_ms) == (2, 3, 1000)
    batches = spool.peek(10)
    assert [b.lines for b in batches] == ["a1\na2", "b1"]
    spool.remove(batches[:1])
    assert spool.depth().readings == 1
    spool.remove(batches[1:])
    assert spool.depth().batches == 0
    assert spool.depth().oldest_ms is None
    spool.close()


def test_removed_batches_are_not_written_again_as_zeros(tmp_path: Path) -> None:
    """Both spool connections delete with secure_delete=FAST (2), whatever the SQLite build's
    default: a removal frees the row's pages without overwriting them in the WAL; the WAL
    after removing a large batch stays far smaller than the batch."""
    spool = Spool(tmp_path / "s.sqlite")
    for conn in (spool._write_conn, spool._read_conn):
        assert conn.execute("PRAGMA secure_delete").fetchone()[0] == 2
    spool.append([("x" * 400_000, 1)], created_ms=1)
    spool._write_conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    spool.remove(spool.peek(10))
    wal = tmp_path / "s.sqlite-wal"
    assert wal.stat().st_size < 100_000
    assert spool.depth().batches == 0
    spool.close()


def test_peek_respects_the_batch_size_but_returns_at_least_one(tmp_path: Path) -> None:
    """The sink reads about max_readings at a time, and never stalls on one big batch."""
    spool = Spool(tmp_path / "s.sqlite")
    spool.append([("x", 5), ("y", 5), ("z", 5)], created_ms=1)
    assert [b.lines for b in spool.peek(10)] == ["x", "y"]
    assert [b.lines for b in spool.peek(1)] == ["x"]
    spool.close()


def test_dead_letter_keeps_the_data_and_the_reason(tmp_path: Path) -> None:
    """Refused batches move to the dead-letter table with the error, never away."""
    spool = Spool(tmp_path / "s.sqlite")
    spool.append([("bad line", 1)], created_ms=5)
    batch = spool.peek(10)
    spool.dead_letter(batch, "HTTP 400 field type conflict", failed_ms=9)
    assert spool.depth().batches == 0
    assert spool.depth().dead_letters == 1
    assert spool.dead_letters()[0]["error"] == "HTTP 400 field type conflict"
    spool.close()


def test_full_spool_reports_no_room(tmp_path: Path) -> None:
    """Past max_readings the spool says it has no room (ingest then holds back acks)."""
    spool = Spool(tmp_path / "s.sqlite", max_readings=3)
    spool.append([("a", 2)], created_ms=1)
    assert spool.has_room()
    spool.append([("b", 2)], created_ms=1)
    assert not spool.has_room()
    assert not spool.wait_for_room(0.05)
    spool.remove(spool.peek(2))
    assert spool.has_room()
    spool.close()


def test_committed_batches_survive_kill_9(tmp_path: Path) -> None:
    """What append() returned for is on disk even if the process is killed right after."""
    path = tmp_path / "s.sqlite"
    script = textwrap.dedent(
        f"""
        import os, signal, sys
        from pathlib import Path
        from safety_hub.ingest.spool import Spool
        spool = Spool(Path({str(path)!r}))
        for i in range(200):
            spool.append([(f"line{{i}}", 1)], created_ms=i)
        sys.stdout.write("appended\\n"); sys.stdout.flush()
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.returncode == -signal.SIGKILL
    assert "appended" in proc.stdout
    reopened = Spool(path)
    assert reopened.depth().readings == 200
    assert [b.lines for b in reopened.peek(1000)][-1] == "line199"
    reopened.close()
    assert os.path.exists(path)


def test_removal_waits_for_an_append_in_process_not_in_sqlite(tmp_path: Path) -> None:
    # The sink's delete and the ingest's append share one in-process lock, so neither ever
    # meets the other's SQLite write transaction and sleep-polls in SQLite's busy handler.
    spool = Spool(tmp_path / "spool.sqlite", sync="normal")
    spool.append([("a", 1), ("b", 1)], 1)
    batches = spool.peek(10)
    done = threading.Event()
    worker = threading.Thread(target=lambda: (spool.remove(batches[:1]), done.set()))
    with spool._write_lock:  # an append in progress
        worker.start()
        assert not done.wait(0.3)  # the removal is queued behind it
        assert spool.depth().batches == 2
    worker.join(10)
    assert done.is_set() and spool.depth().batches == 1


def test_a_full_disk_fails_the_append_with_the_real_error_and_changes_nothing(
    small_tmpfs: SmallFs,
) -> None:
    """On a full tmpfs append and remove raise DiskFullError naming the file and "database or
    disk is full" (not "cannot rollback"); nothing is written, the counts stay, and both work
    again once space is freed, on the same Spool."""
    path = small_tmpfs.path / "spool.sqlite"
    spool = Spool(path)
    spool.append([("kept", 3)], created_ms=7)
    before, kept = spool.depth(), spool.peek(10)
    small_tmpfs.fill()
    big = "y" * 200_000
    with pytest.raises(DiskFullError) as caught:
        spool.append([(big, 1), ("z", 1)], created_ms=8)
    assert str(caught.value).startswith(f"{path}: spool: database or disk is full (0 bytes free")
    assert caught.value.path == str(path)
    with pytest.raises(DiskFullError, match="database or disk is full"):
        spool.remove(kept)
    assert spool.depth() == before
    assert spool.peek(10) == kept
    small_tmpfs.unfill()
    spool.append([(big, 1), ("z", 1)], created_ms=8)
    assert spool.depth().readings == before.readings + 2
    spool.remove(kept)
    assert [b.lines for b in spool.peek(10)] == [big, "z"]
    spool.close()


def test_removing_a_batch_twice_counts_it_once(tmp_path: Path) -> None:
    """Two writers racing to remove the same batch leave the depth at what the file holds."""
    spool = Spool(tmp_path / "spool.sqlite")
    spool.append([("m v=1 1", 1), ("m v=2 2", 1)], 1)
    batches = spool.peek(10)
    spool.remove(batches[:1])
    spool.remove(batches[:1])
    depth = spool.depth()
    assert (depth.batches, depth.readings) == (1, 1)
    spool.dead_letter(batches, "HTTP 400", 3)
    assert spool.depth().dead_letters == 1 and spool.depth().batches == 0
    spool.close()
