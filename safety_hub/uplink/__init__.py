"""The provincial uplink (docs/uplink.md): what goes up (records, mapping, ``dataId``), the
configuration file, the durable per-destination queue and the delivery model (rate limit,
backoff, per-destination state). Transports live in ``connectors/uplink/``, the wiring in
``safety_hub/runtime/uplink.py``.
"""

from safety_hub.uplink.config import Destination, UplinkConfig, load_uplink, parse_uplink
from safety_hub.uplink.delivery import (
    Backoff,
    DestinationState,
    RateLimiter,
    SendOutcome,
    UplinkTransport,
)
from safety_hub.uplink.queue import Depth, PutResult, Queued, UplinkQueue, UplinkQueueStore
from safety_hub.uplink.records import DEFAULT_MAPPING, SOURCES, TIERS, Const, OutRecord, data_id

__all__ = [
    "DEFAULT_MAPPING",
    "SOURCES",
    "TIERS",
    "Backoff",
    "Const",
    "Depth",
    "Destination",
    "DestinationState",
    "OutRecord",
    "PutResult",
    "Queued",
    "RateLimiter",
    "SendOutcome",
    "UplinkConfig",
    "UplinkQueue",
    "UplinkQueueStore",
    "UplinkTransport",
    "data_id",
    "load_uplink",
    "parse_uplink",
]
