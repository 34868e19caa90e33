"""Recordings of a live MQTT telemetry stream, and their replay.

A recording is JSON Lines (UTF-8), one object per line:

- line 1, the header: ``{"format": "safety-hub/mqtt-recording/v1", "url": "mqtt://host:1883",
  "topics": ["hazard/v1/+/telemetry/#", "hazard/v1/+/critical/#", "hazard/v1/+/status"],
  "started_ms": 1790000000000}``
- then one line per message, in the order received: ``{"t_ms": 1790000000123, "topic":
  "hazard/v1/e01-chloralkali/telemetry", "retain": false, "payload": "{\"ts\":...}"}``; a payload
  that is not UTF-8 is stored as ``"payload_b64"`` instead of ``"payload"``.

``t_ms`` is the recorder's receive time (epoch ms): replay delivers each message to the hub at
that time on its virtual clock, so the hub sees the same arrival pattern as the live one did.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from safety_hub.errors import LoadError

RECORDING_FORMAT = "safety-hub/mqtt-recording/v1"


class RecordingError(LoadError):
    """A recording file is unreadable; errors as ``file:line: ...``."""


@dataclass(frozen=True, slots=True)
class RecordedMessage:
    t_ms: int
    topic: str
    payload: bytes
    retain: bool = False

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"t_ms": self.t_ms, "topic": self.topic, "retain": self.retain}
        try:
            out["payload"] = self.payload.decode("utf-8")
        except UnicodeDecodeError:
            out["payload_b64"] = base64.b64encode(self.payload).decode("ascii")
        return out


def header(url: str, topics: list[str], started_ms: int) -> dict[str, Any]:
    return {"format": RECORDING_FORMAT, "url": url, "topics": topics, "started_ms": started_ms}


def is_recording(path: Path) -> bool:
    try:
        with path.open(encoding="utf-8") as f:
            first = f.readline()
    except (OSError, UnicodeDecodeError):
        return False
    return RECORDING_FORMAT in first


def read_recording(path: Path) -> tuple[dict[str, Any], list[RecordedMessage]]:
    """The header and every message; raises ``RecordingError`` naming each bad line."""
    file = str(path)
    errors: list[str] = []
    messages: list[RecordedMessage] = []
    head: dict[str, Any] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise RecordingError(file, [f"{file}: cannot read: {exc}"]) from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            doc = json.loads(line)
        except ValueError as exc:
            errors.append(f"{file}:{number}: not JSON: {exc}")
            continue
        if number == 1:
            if not isinstance(doc, dict) or doc.get("format") != RECORDING_FORMAT:
                errors.append(
                    f"{file}:1: not a recording: the header needs format {RECORDING_FORMAT!r}"
                )
                break
            head = doc
            continue
        problem = _problem(doc)
        if problem:
            errors.append(f"{file}:{number}: {problem}")
            continue
        payload = (
            doc["payload"].encode("utf-8")
            if "payload" in doc
            else base64.b64decode(doc["payload_b64"])
        )
        messages.append(
            RecordedMessage(doc["t_ms"], doc["topic"], payload, bool(doc.get("retain")))
        )
    if errors:
        raise RecordingError(file, errors)
    if not head:
        raise RecordingError(file, [f"{file}:1: empty recording (no header line)"])
    for i in range(1, len(messages)):
        if messages[i].t_ms < messages[i - 1].t_ms:
            # receive times from one recorder only go forward; keep the order anyway
            messages[i] = RecordedMessage(
                messages[i - 1].t_ms, messages[i].topic, messages[i].payload, messages[i].retain
            )
    return head, messages


def _problem(doc: Any) -> str | None:
    if not isinstance(doc, dict):
        return "a message line must be a JSON object"
    if not isinstance(doc.get("t_ms"), int) or isinstance(doc.get("t_ms"), bool):
        return "t_ms must be an integer epoch in ms"
    if not isinstance(doc.get("topic"), str) or not doc["topic"]:
        return "topic must be a non-empty string"
    if not isinstance(doc.get("payload"), str) and not isinstance(doc.get("payload_b64"), str):
        return "payload (text) or payload_b64 (base64) is required"
    return None


def iter_batches(messages: list[RecordedMessage]) -> Iterator[tuple[int, list[RecordedMessage]]]:
    """Messages grouped by receive time."""
    batch: list[RecordedMessage] = []
    for m in messages:
        if batch and m.t_ms != batch[0].t_ms:
            yield batch[0].t_ms, batch
            batch = []
        batch.append(m)
    if batch:
        yield batch[0].t_ms, batch
