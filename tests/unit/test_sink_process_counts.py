"""The sink process's view of the spool: two Spool objects on one file, as the hub and its sink
process hold it; the deletions the child reports keep the hub's counts equal to the file's."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

from safety_hub.ingest.spool import Spool
from safety_hub.runtime.sink_process import ChildSpool, Relay


def test_the_hub_counts_what_the_child_removed(tmp_path: Path) -> None:
    path = tmp_path / "spool.sqlite"
    hub = Spool(path, sync="normal")
    child = Spool(path, sync="normal")
    ours, theirs = multiprocessing.Pipe()
    view = ChildSpool(child, Relay(theirs))
    try:
        hub.append([("m a=1 1\nm a=2 2", 2), ("m a=3 3", 1)], created_ms=1_000)
        hub.append([("m a=4 4", 1)], created_ms=2_000)
        assert view.wait_for_data(1.0)  # the child sees the hub's appends in the file
        first = view.peek(2)
        assert [b.n for b in first] == [2]
        view.remove(first)
        view.dead_letter(view.peek(1), "HTTP 400 bad", failed_ms=3_000)
        view.remove(first)  # removed twice: counted once
        while ours.poll(0):
            msg = ours.recv()
            assert msg[0] == "removed"
            hub.note_removed(*msg[1:])
        depth = hub.depth()
        assert (depth.batches, depth.readings, depth.dead_letters) == (1, 1, 1)
        assert depth.bytes == len("m a=4 4")
        assert depth.oldest_ms == 2_000
        fresh = Spool(path, sync="normal")  # what the file holds, counted from scratch
        assert fresh.depth() == depth
        fresh.close()
    finally:
        hub.close()
        child.close()
