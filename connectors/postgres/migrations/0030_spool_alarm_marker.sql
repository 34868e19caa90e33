-- The newest alarm-journal sequence number whose alarm_event line is in the spool (or was, and
-- went on to storage), moved in the same transaction as that line. The alarm runtime puts an
-- event's outbox row first and its spool line after; after a crash it writes the lines of the
-- transitions after this marker again (safety_hub/runtime/alarm_runtime.py).
-- depends: 0010_state
CREATE TABLE spool_alarm_marker (
    id  integer PRIMARY KEY CHECK (id = 1),
    seq bigint NOT NULL
);
