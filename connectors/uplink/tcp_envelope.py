"""The provincial TCP envelope (docs/uplink.md, "TCP envelope").

Each record goes up as one JSON envelope ``{appId, serviceId, dataId, districtCode, data}``
ended by ``@@``; ``data`` is the JSON array ``[record]``, AES-encrypted with PKCS7 padding and
written as base64 text. One TCP connection is kept open and reopened after any error.

When has the platform got a record? The platform's reply, if any, is not published, so this is
configuration (``ack``):

- ``write`` (default): the whole batch was written and the platform did not close or reset the
  connection within ``ack_timeout_s`` after it. Bytes the platform sends back are logged and
  otherwise ignored. A close inside that window sends the batch again (same ``dataId``s).
- ``reply``: the platform answers each envelope with a JSON object ended by ``@@`` carrying
  ``dataId`` (else it answers the oldest unanswered envelope) and ``code`` or ``status``: 0,
  200, "0", "200", "ok" or "success" (or ``success: true``) is delivered, anything else is a
  refusal of that record (counted, logged, not sent again). Envelopes without a reply within
  ``ack_timeout_s`` are sent again.
"""

from __future__ import annotations

import json
import logging
import select
import socket
import time
from collections.abc import Sequence
from typing import Any

from connectors.uplink.aes import AesCodec
from safety_hub.uplink import OutRecord, SendOutcome
from safety_hub.uplink.schema import TcpEnvelopeModel

log = logging.getLogger("safety_hub.uplink.tcp")

FRAME_END = b"@@"
OK_CODES = frozenset({0, 200, "0", "200", "ok", "OK", "success", "SUCCESS"})
_CHUNK = 65_536


def envelope(config: TcpEnvelopeModel, codec: AesCodec, record: OutRecord) -> bytes:
    """One record as its ``@@``-ended envelope."""
    plain = json.dumps([record.data], ensure_ascii=False, separators=(",", ":"))
    body = {
        "appId": config.app_id,
        "serviceId": config.service_ids.get(record.kind, config.service_id),  # type: ignore[call-overload]
        "dataId": record.data_id,
        "districtCode": config.district_code,
        "data": codec.encrypt(plain.encode("utf-8")),
    }
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + FRAME_END


class FrameBuffer:
    """Splits a byte stream at ``@@``; an unended frame longer than ``max_bytes`` is an error
    (the platform is not bounded otherwise)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._pending = b""

    def feed(self, chunk: bytes) -> list[bytes]:
        self._pending += chunk
        *frames, self._pending = self._pending.split(FRAME_END)
        if len(self._pending) > self.max_bytes:
            size = len(self._pending)
            self._pending = b""
            raise ConnectionError(f"reply of more than {size} bytes without @@")
        return frames

    def clear(self) -> None:
        self._pending = b""


def reply_ok(reply: dict[str, Any]) -> bool:
    if reply.get("success") is True:
        return True
    code = reply.get("code", reply.get("status"))
    return isinstance(code, int | str) and not isinstance(code, bool) and code in OK_CODES


class TcpEnvelopeTransport:
    def __init__(self, config: TcpEnvelopeModel, codec: AesCodec) -> None:
        self.config = config
        self.codec = codec
        self.description = (
            f"tcp://{config.host}:{config.port} (AES-{codec.bits}-{codec.mode.upper()}, "
            f"ack {config.ack})"
        )
        self._sock: socket.socket | None = None
        self._frames = FrameBuffer(config.max_reply_bytes)

    def send(self, records: Sequence[OutRecord]) -> SendOutcome:
        payload = b"".join(envelope(self.config, self.codec, r) for r in records)
        try:
            sock = self._connected()
            self._read_ready(sock, 0.0)  # a close since the last batch shows here
            sock.sendall(payload)
            if self.config.ack == "write":
                return self._settle(sock, len(records))
            return self._replies(sock, records)
        except (OSError, ValueError) as exc:
            self.close()
            return SendOutcome(0, error=f"{self.description}: {exc}")

    def _connected(self) -> socket.socket:
        if self._sock is None:
            cfg = self.config
            sock = socket.create_connection((cfg.host, cfg.port), timeout=cfg.connect_timeout_s)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.settimeout(cfg.ack_timeout_s)
            self._sock = sock
            self._frames.clear()
            log.info("uplink connected", extra={"target": self.description})
        return self._sock

    def _read_ready(self, sock: socket.socket, wait_s: float) -> list[bytes]:
        """The frames that arrive within ``wait_s``; ConnectionError once the peer closed."""
        readable, _, _ = select.select([sock], [], [], wait_s)
        if not readable:
            return []
        chunk = sock.recv(_CHUNK)
        if not chunk:
            raise ConnectionError("the platform closed the connection")
        return self._frames.feed(chunk)

    def _settle(self, sock: socket.socket, count: int) -> SendOutcome:
        deadline = time.monotonic() + self.config.ack_timeout_s
        while (left := deadline - time.monotonic()) > 0:
            for frame in self._read_ready(sock, left):
                log.info("uplink: the platform sent %d bytes (ignored, ack write)", len(frame))
        return SendOutcome(count)

    def _replies(self, sock: socket.socket, records: Sequence[OutRecord]) -> SendOutcome:
        index = {r.data_id: i for i, r in enumerate(records)}
        answers: dict[int, str | None] = {}  # index -> None (delivered) or the refusal
        deadline = time.monotonic() + self.config.ack_timeout_s
        while len(answers) < len(records) and (left := deadline - time.monotonic()) > 0:
            for frame in self._read_ready(sock, left):
                self._answer(frame, index, answers, len(records))
        done = 0
        while done in answers:
            done += 1
        rejected = {i: str(answers[i]) for i in range(done) if answers[i] is not None}
        error = None
        if done < len(records):
            error = f"{self.description}: no reply for {len(records) - done} envelope(s) within "
            error += f"{self.config.ack_timeout_s:g} s"
        return SendOutcome(done, rejected, error)

    def _answer(
        self, frame: bytes, index: dict[str, int], answers: dict[int, str | None], total: int
    ) -> None:
        text = frame.strip()
        if not text:
            return
        try:
            reply = json.loads(text)
        except ValueError:
            reply = None
        if not isinstance(reply, dict):
            log.warning("uplink: reply that is not a JSON object: %.200r", text)
            return
        data_id = reply.get("dataId")
        if isinstance(data_id, str) and data_id in index:
            at = index[data_id]
        else:
            waiting = [i for i in range(total) if i not in answers]
            if not waiting:
                return
            at = waiting[0]
        answers[at] = None if reply_ok(reply) else f"refused: {json.dumps(reply)[:300]}"

    def close(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock = None
