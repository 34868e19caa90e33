"""Telling safety-critical telemetry apart on arrival, before it queues.

A message on an enterprise's ``critical`` topic, and a ``telemetry`` message that carries at least
one reading of a safety-critical tag (the hub passes the gas detectors and SIS tags of the plant
registry), is *urgent*: the ingest worker takes it ahead of
bulk process data (:mod:`safety_hub.ingest.intake`). Triage runs on the transport's thread, so
it reads only the tags (msgspec, a schema of nothing but ``readings[].tag``) and only for
enterprises that have critical tags; what it cannot read is not urgent and gets the full
decoder's verdict in its turn. It never raises and never rejects: the decoder still judges
every message as the contract says.
"""

from __future__ import annotations

from collections.abc import Iterable
from operator import attrgetter

import msgspec

from safety_hub.ingest.telemetry import CONTRACT_VERSION, CRITICAL, TELEMETRY, TOPIC_ROOT


class _Tag(msgspec.Struct, gc=False):  # strings only: nothing for the GC to track
    tag: str


class _Tags(msgspec.Struct, gc=False):
    readings: list[_Tag]


_tags_decoder = msgspec.json.Decoder(_Tags)
_tag_of = attrgetter("tag")


class Triage:
    """``urgent(topic, payload)``: True for a message on a ``critical`` topic, and for one on a
    ``telemetry`` topic (sub-topics too) that carries a critical tag's reading."""

    def __init__(self, critical: Iterable[tuple[str, str]], max_payload_bytes: int) -> None:
        by_enterprise: dict[str, set[str]] = {}
        for enterprise, tag in critical:
            by_enterprise.setdefault(enterprise, set()).add(tag)
        self._critical = {e: frozenset(tags) for e, tags in by_enterprise.items()}
        self._max_bytes = max_payload_bytes

    def urgent(self, topic: str, payload: bytes) -> bool:
        parts = topic.split("/", 4)
        if len(parts) < 4 or parts[0] != TOPIC_ROOT or parts[1] != CONTRACT_VERSION:
            return False
        if parts[3] != TELEMETRY:
            return parts[3] == CRITICAL and parts[2] != ""
        tags = self._critical.get(parts[2])
        if tags is None or len(payload) > self._max_bytes:
            return False
        try:
            readings = _tags_decoder.decode(payload).readings
        except Exception:  # never on the transport's thread: the decoder judges it in turn
            return False
        # In C: no Python step per reading on the transport's thread.
        return not tags.isdisjoint(map(_tag_of, readings))

    def non_critical(self, enterprise: str, tags: Iterable[str]) -> int:
        """How many of ``tags`` are not safety-critical tags of ``enterprise`` (readings sent
        on its critical topic that belong on telemetry)."""
        critical = self._critical.get(enterprise, frozenset())
        return sum(1 for tag in tags if tag not in critical)
