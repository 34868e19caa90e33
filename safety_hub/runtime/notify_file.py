"""A notification sender that writes each message as one JSON line to a local file: what
``safety-hub demo`` delivers to, so that the sample park's example contacts are never sent to
(docs/notifications.md, "The demo"). The contact URL is written redacted."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

from safety_hub.errors import NotificationError
from safety_hub.notify.contacts import OutgoingMessage


def demo_notify_file(data_dir: Path) -> Path:
    """Where ``safety-hub demo`` delivers its notifications (one JSON line per message)."""
    return data_dir / "notifications.jsonl"


class FileSender:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self.sent = 0

    def send(self, message: OutgoingMessage) -> None:
        record = {
            "notification_id": message.notification_id,
            "channel": message.contact.channel,
            "contact": message.contact.redacted(),
            "title": message.title,
            "body": message.body,
            "written_ms": time.time_ns() // 1_000_000,
        }
        line = json.dumps(record, ensure_ascii=False) + "\n"
        try:
            with self._lock, self.path.open("a", encoding="utf-8") as out:
                out.write(line)
        except OSError as exc:
            raise NotificationError(
                message.contact.channel, str(self.path), f"cannot write: {exc.strerror}"
            ) from None
        self.sent += 1
