-- The active-node lease of a redundant hub pair and its fencing token.
--
-- One row per lease name ('active'). The holder renews it before expires_at; another node may
-- take it only once it has expired. token grows by one every time the holder changes, and every
-- write of the shared state checks it in the same transaction (hub_fence), so a node that lost
-- the lease cannot write even if it does not know yet. Times are the database's clock, never a
-- hub's, so two hubs with different clocks agree on expiry.
CREATE TABLE hub_lease (
    name        text PRIMARY KEY,
    holder      text NOT NULL,
    token       bigint NOT NULL,
    acquired_at timestamptz NOT NULL,
    renewed_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    api_url     text
);

-- Raises unless p_token is the current, unexpired token of lease p_name. Call it first in every
-- write transaction of a fenced node: SELECT hub_fence('active', %s).
CREATE FUNCTION hub_fence(p_name text, p_token bigint) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    current_token bigint;
    current_expiry timestamptz;
BEGIN
    SELECT token, expires_at INTO current_token, current_expiry
      FROM hub_lease WHERE name = p_name FOR SHARE;
    IF current_token IS NULL OR current_token <> p_token OR current_expiry <= now() THEN
        RAISE EXCEPTION 'fenced: lease % token % is not current (current %, expires %)',
            p_name, p_token, current_token, current_expiry
            USING ERRCODE = 'SH001';
    END IF;
END;
$$;
