-- Stripe webhook deliveries already applied. The event id is recorded in the same transaction as the
-- state change it caused, so a redelivery (or the same event reaching two processes at once: the
-- primary key serialises them) is acknowledged as a duplicate and never applied twice.
-- Idempotent: runs at every start (see portal_core/hookspecs.py portal_schema_sql).
CREATE TABLE IF NOT EXISTS stripe_events (
    event_id     text        PRIMARY KEY,
    type         text        NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS stripe_events_received_at_idx ON stripe_events (received_at);
