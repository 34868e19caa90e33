-- The hub's state in PostgreSQL: the alarm journal, the engine snapshot, the MQTT alarm-event
-- outbox, the notification outbox and the ingest spool (docs/storage.md, "State in
-- PostgreSQL"). The same tables and rules as the SQLite files, one database for a hub pair.
-- depends: 0001_lease

-- Alarm journal. transitions.id is the journal sequence number: allocated from journal_counter
-- in the write transaction itself, so it has no gap and no duplicate (a rolled-back write
-- gives its numbers back, which a SEQUENCE would not).
CREATE TABLE journal_counter (
    id   integer PRIMARY KEY CHECK (id = 1),
    last bigint NOT NULL
);
INSERT INTO journal_counter VALUES (1, 0);

CREATE TABLE transitions (
    id          bigint PRIMARY KEY,
    alarm_id    bigint,
    key         text NOT NULL,
    ts_ms       bigint NOT NULL,
    event_ts_ms bigint,
    action      text NOT NULL,
    from_state  text,
    to_state    text,
    user_name   text,
    comment     text,
    value       double precision,
    priority    text,
    raised_ms   bigint,
    annunciated boolean NOT NULL
);
CREATE INDEX transitions_alarm ON transitions (alarm_id, id);
CREATE INDEX transitions_ts ON transitions (ts_ms);
CREATE INDEX transitions_annunciated ON transitions (annunciated, ts_ms);

CREATE TABLE alarms (
    id   bigint PRIMARY KEY,
    key  text NOT NULL UNIQUE,
    data text NOT NULL
);

CREATE TABLE suppressions (
    key      text NOT NULL,
    cause    text NOT NULL,
    since_ms bigint NOT NULL,
    PRIMARY KEY (key, cause)
);

CREATE TABLE first_out (
    hazard_source text PRIMARY KEY,
    alarm_id      bigint NOT NULL,
    since_ms      bigint NOT NULL
);

-- 366 days: alarm journals are kept at least one year (a leap year included).
CREATE TABLE retention (
    id               bigserial PRIMARY KEY,
    pruned_before_ms bigint NOT NULL,
    at_ms            bigint NOT NULL,
    CHECK (pruned_before_ms <= at_ms - 31622400000)
);

CREATE FUNCTION journal_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '%', TG_ARGV[0] USING ERRCODE = 'restrict_violation';
END;
$$;

CREATE FUNCTION journal_prune_check() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM retention WHERE OLD.ts_ms < pruned_before_ms) THEN
        RAISE EXCEPTION 'alarm journal is append-only: only rows past retention can be pruned'
            USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN OLD;
END;
$$;

CREATE TRIGGER transitions_no_update BEFORE UPDATE ON transitions FOR EACH ROW
    EXECUTE FUNCTION journal_refuse('alarm journal is append-only: transitions cannot be updated');
CREATE TRIGGER transitions_no_delete BEFORE DELETE ON transitions FOR EACH ROW
    EXECUTE FUNCTION journal_prune_check();
CREATE TRIGGER transitions_no_truncate BEFORE TRUNCATE ON transitions FOR EACH STATEMENT
    EXECUTE FUNCTION journal_refuse('alarm journal is append-only: it cannot be truncated');
CREATE TRIGGER retention_no_update BEFORE UPDATE ON retention FOR EACH ROW
    EXECUTE FUNCTION journal_refuse('retention records cannot be changed');
CREATE TRIGGER retention_no_delete BEFORE DELETE ON retention FOR EACH ROW
    EXECUTE FUNCTION journal_refuse('retention records cannot be deleted');

-- Engine snapshot: one row, replaced after every batch.
CREATE TABLE engine_snapshot (
    id   integer PRIMARY KEY CHECK (id = 1),
    data text NOT NULL
);

-- MQTT alarm-event outbox and its marker (the newest journal seq put with a message).
CREATE TABLE alarm_outbox (
    id         bigserial PRIMARY KEY,
    topic      text NOT NULL,
    payload    bytea NOT NULL,
    created_ms bigint NOT NULL
);
CREATE TABLE alarm_outbox_marker (
    id  integer PRIMARY KEY CHECK (id = 1),
    seq bigint NOT NULL
);

-- Notification outbox (docs/notifications.md) and its marker.
CREATE TABLE notification (
    id            text PRIMARY KEY,
    alarm_id      bigint NOT NULL,
    annunciation  bigint NOT NULL,
    policy        text NOT NULL,
    step          text NOT NULL,
    kind          text NOT NULL,
    person_id     text NOT NULL,
    person_name   text NOT NULL,
    channel       text NOT NULL,
    url           text NOT NULL,
    due_ms        bigint NOT NULL,
    next_ms       bigint NOT NULL,
    cancel_on_ack boolean NOT NULL,
    facts         jsonb NOT NULL,
    status        text NOT NULL,
    attempts      integer NOT NULL DEFAULT 0,
    last_error    text,
    created_ms    bigint NOT NULL,
    done_ms       bigint,
    message_id    text
);
CREATE INDEX notification_next ON notification (status, next_ms);
CREATE INDEX notification_alarm ON notification (alarm_id, annunciation);
CREATE INDEX notification_sent ON notification (person_id, url, done_ms);
CREATE TABLE notification_marker (
    id  integer PRIMARY KEY CHECK (id = 1),
    seq bigint NOT NULL
);

-- Ingest spool: readings acknowledged to the broker and not yet in InfluxDB, one row per
-- intake batch of messages, and the batches InfluxDB refused (dead letters).
CREATE TABLE spool_batch (
    id         bigserial PRIMARY KEY,
    created_ms bigint NOT NULL,
    n          integer NOT NULL,
    bytes      integer NOT NULL,
    lines      text NOT NULL
);
CREATE TABLE spool_dead_letter (
    id         bigserial PRIMARY KEY,
    batch_id   bigint NOT NULL,
    created_ms bigint NOT NULL,
    failed_ms  bigint NOT NULL,
    error      text NOT NULL,
    n          integer NOT NULL,
    lines      text NOT NULL
);
