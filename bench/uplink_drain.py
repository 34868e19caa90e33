"""How fast the uplink can drain a backlog: records/s from the durable queue through the TCP
envelope (JSON, AES-128-ECB, base64, ``@@``) to a TCP sink that counts the frames.

Baseline, in the same run to the same sink: the same records as plain JSON frames written on a
socket in the same batches, with no queue and no encryption. The ratio is what durability
(commit before sending, delete after) and the envelope cost. The transport runs with
``ack: write`` and a 1 ms ack window, so the figure is the machinery's limit; a configured
destination sends at most ``rate_per_s`` records/s and waits ``ack_timeout_s`` per batch.

``--state-url postgresql://...`` runs the same with the queue in that PostgreSQL database (a
redundant pair's shared queue, migrated first; drained empty again by the run)
after the SQLite file, in the same run.
"""

from __future__ import annotations

import argparse
import json
import socket
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from connectors.uplink import AesCodec, TcpEnvelopeTransport
from safety_hub.uplink import OutRecord, UplinkQueue, UplinkQueueStore
from safety_hub.uplink.schema import TcpEnvelopeModel

RECORDS = 20_000
BATCHES = (50, 500)


class Sink:
    """Accepts connections and counts ``@@``-ended frames."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.frames = 0
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._read, args=(conn,), daemon=True).start()

    def _read(self, conn: socket.socket) -> None:
        tail = b""
        while chunk := conn.recv(1 << 20):
            data = tail + chunk
            count = data.count(b"@@")
            tail = data[data.rfind(b"@@") + 2 :] if count else data
            with self._lock:
                self.frames += count

    def wait(self, expected: int, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while self.frames < expected:
            if time.monotonic() > deadline:
                raise TimeoutError(f"sink got {self.frames} of {expected} frames")
            time.sleep(0.001)

    def close(self) -> None:
        self.listener.close()


def records(n: int) -> list[OutRecord]:
    return [
        OutRecord(
            "reading",
            f"{i:032x}",
            "e01-chloralkali/GT-1101",
            {
                "TARGET_CODE": "e01-chloralkali/GT-1101",
                "ENTERPRISE_CODE": "e01-chloralkali",
                "HAZARD_CODE": "HS-E01-01",
                "BIT_NO": "GT-1101",
                "VALUE": 0.25 + i * 1e-4,
                "UNIT": "ppm",
                "QUALITY": "good",
                "COLLECT_TIME": "2026-11-30 16:00:00",
            },
        )
        for i in range(n)
    ]


def baseline(sink: Sink, batch: list[OutRecord], size: int) -> float:
    start_frames = sink.frames
    began = time.perf_counter()
    with socket.create_connection(("127.0.0.1", sink.port)) as sock:
        for at in range(0, len(batch), size):
            chunk = batch[at : at + size]
            sock.sendall(b"".join(json.dumps(r.data).encode() + b"@@" for r in chunk))
        sink.wait(start_frames + len(batch))
    return len(batch) / (time.perf_counter() - began)


def uplink(
    sink: Sink, batch: list[OutRecord], size: int, queue: UplinkQueueStore
) -> tuple[float, float]:
    """(queue put records/s, drain records/s)."""
    began = time.perf_counter()
    for at in range(0, len(batch), 500):  # the producer puts a readings tick at a time
        queue.put("bench", batch[at : at + 500], 0, max_records=10 * len(batch))
    put_rate = len(batch) / (time.perf_counter() - began)
    config = TcpEnvelopeModel(
        host="127.0.0.1",
        port=sink.port,
        app_id="bench",
        service_id="bench",
        district_code="152921",
        key_env="UNUSED",
        ack="write",
        ack_timeout_s=0.001,
    )
    transport = TcpEnvelopeTransport(config, AesCodec(b"0123456789abcdef"))
    start_frames = sink.frames
    began = time.perf_counter()
    while waiting := queue.peek("bench", size):
        outcome = transport.send([q.record for q in waiting])
        assert outcome.error is None, outcome.error
        queue.remove("bench", [q.seq for q in waiting[: outcome.done]])
    sink.wait(start_frames + len(batch))
    drain_rate = len(batch) / (time.perf_counter() - began)
    transport.close()
    queue.close()
    return put_rate, drain_rate


def pg_queue(url: str) -> Callable[[int], UplinkQueueStore]:
    from connectors.postgres import migrate
    from connectors.postgres.uplink_queue import PgUplinkQueue

    migrate(url)
    return lambda size: PgUplinkQueue(url)


def run(state_url: str | None = None) -> None:
    print(f"uplink drain: {RECORDS} reading records, TCP envelope AES-128-ECB, ack write 1 ms")
    sink = Sink()
    batch = records(RECORDS)
    with tempfile.TemporaryDirectory() as tmp:
        backends: list[tuple[str, Callable[[int], UplinkQueueStore]]] = [
            ("SQLite", lambda size: UplinkQueue(Path(tmp) / f"uplink-{size}.sqlite"))
        ]
        if state_url:
            backends.append(("PostgreSQL", pg_queue(state_url)))
        for name, make_queue in backends:
            for size in BATCHES:
                plain = baseline(sink, batch, size)
                put_rate, drain_rate = uplink(sink, batch, size, make_queue(size))
                print(
                    f"  {name:10s} batch {size:4d}: queue put {put_rate:9,.0f}/s, drain "
                    f"{drain_rate:9,.0f}/s; baseline plain JSON on a socket {plain:9,.0f}/s; "
                    f"drain/baseline {drain_rate / plain:.3f}"
                )
    sink.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        prog="python -m bench.uplink_drain", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--state-url", help="also a PostgreSQL queue (postgresql://...)")
    run(parser.parse_args().state_url)
