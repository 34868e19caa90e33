"""A paho client whose publishing threads put their packets on the socket themselves.

With ``loop_start``, paho's ``publish`` only queues the packet and wakes the client's network
thread, which then writes it. In the hub that network thread has to win the interpreter lock
first, while the ingest worker computes bulk readings (it keeps the lock up to the switch
interval at a time) and the receiving sessions' relay thread unpickles the next messages: on
an alarm event's way to the broker that hand-over was the last wait of several, and under a
burst of process data it added milliseconds to the slowest events (docs/benchmarks.md,
"Alarm events written by the thread that publishes them").

:class:`DirectWriteClient` takes that hand-over out. After queuing, the publishing thread
writes what is queued (``write_queued``), under a lock that the network thread's own writes
take too, so two threads never interleave the bytes of one packet. Everything else stays with
the network thread: reading, keep-alive, errors and reconnecting. A write that fails or is
partial leaves the rest queued, and the queued packet has already woken the network thread,
which writes it and handles the error as paho always does.

Not over TLS: an SSL connection must not be read by one thread while another writes to it,
so a TLS client leaves every write to its network thread (``direct=False``). The packet
queue and its writer are paho's internals (``_packet_write``, pinned paho 2.2); a paho without
them makes ``direct`` False, logged once, and the client behaves as paho's own.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode

log = logging.getLogger("connectors.mqtt")

_warned = False


class DirectWriteClient(mqtt.Client):
    """``paho.mqtt.client.Client`` plus :meth:`write_queued`; same constructor, plus
    ``direct`` (False: paho's behaviour, every write on the network thread)."""

    def __init__(self, *args: Any, direct: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        global _warned
        self._write_lock = threading.RLock()
        supported = callable(getattr(self, "_packet_write", None))
        if direct and not supported and not _warned:
            _warned = True
            log.warning(
                "mqtt: this paho has no packet writer to call; alarm events are written by "
                "its network thread",
                extra={"paho": getattr(mqtt, "__version__", "?")},
            )
        self.direct = direct and supported
        self.direct_writes = 0
        """times a publishing thread wrote the queued packets itself"""

    def loop_write(self) -> MQTTErrorCode:
        # The network thread's writes (paho's loop calls this), serialised with ours.
        with self._write_lock:
            return super().loop_write()

    def reconnect(self) -> MQTTErrorCode:
        # Reconnecting empties and refills the packet queue: not while we write from it.
        with self._write_lock:
            return super().reconnect()

    def write_queued(self) -> None:
        """Write the queued packets now, on this thread; what cannot be written now stays
        queued for the network thread. No-op when not ``direct``, when not connected and on
        the network thread itself."""
        if not self.direct or not self.is_connected():
            return
        if threading.current_thread() is getattr(self, "_thread", None):
            return  # paho writes after its callbacks anyway
        with self._write_lock:
            # Its result is not ours to act on: on an error the packet went back to the
            # head of the queue, and the network thread (woken by the queued packet) meets
            # the same error on its next read or write, and reconnects.
            self._packet_write()
            self.direct_writes += 1
