-- The provincial uplink's durable queue (docs/uplink.md, "Delivery"): the same tables and rules
-- as the SQLite file uplink.sqlite, one queue for a hub pair, so the node that takes the lease
-- over sends the backlog the other node left, in order, with the same dataIds.
-- depends: 0010_state

-- One FIFO per destination (seq order); a dataId waits at most once per destination.
CREATE TABLE uplink_queue (
    seq         bigserial PRIMARY KEY,
    destination text NOT NULL,
    data_id     text NOT NULL,
    kind        text NOT NULL,
    body        text NOT NULL,
    created_ms  bigint NOT NULL,
    UNIQUE (destination, data_id)
);
CREATE INDEX uplink_queue_order ON uplink_queue (destination, seq);
CREATE INDEX uplink_queue_kind ON uplink_queue (destination, kind, seq);

-- How far each destination has been queued: r:<enterprise>/<tag> (newest reading time),
-- journal (the alarm journal row last queued), base (the base data digest). Committed in the
-- transaction of the records they cover, or right after it.
CREATE TABLE uplink_cursor (
    destination text NOT NULL,
    name        text NOT NULL,
    value       text NOT NULL,
    PRIMARY KEY (destination, name)
);
