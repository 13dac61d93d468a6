-- ---- webhooks plugin: customers' endpoints, the queue of messages to deliver, and the delivery log ----
-- Idempotent: runs at every start after schema.sql (portal_core/hookspecs.py portal_schema_sql), under the
-- rules at the top of schema.sql (IF NOT EXISTS only; never DROP, RENAME or retype).

-- An endpoint a customer registered: where to send which event types, and the signing secret. The secret
-- must be kept readable (every delivery is signed with it); the API shows it only once, at creation.
CREATE TABLE IF NOT EXISTS webhook_endpoints (
    id           uuid        PRIMARY KEY,
    user_id      bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    url          text        NOT NULL,
    event_types  text[]      NOT NULL,
    secret       text        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS webhook_endpoints_user_idx ON webhook_endpoints (user_id);

-- One message for one endpoint. `body` is exactly what is sent (and signed) on every attempt; message_id is
-- the webhook-id header, the same on every attempt, so the receiver can drop duplicates. The unique key
-- makes queueing an event twice (portal_event is at least once) queue it once.
CREATE TABLE IF NOT EXISTS webhook_deliveries (
    id               bigserial   PRIMARY KEY,
    endpoint_id      uuid        NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    message_id       text        NOT NULL,
    event_type       text        NOT NULL,
    body             text        NOT NULL,
    state            text        NOT NULL DEFAULT 'pending',  -- pending, delivered, failed (gave up)
    attempts         integer     NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz,                             -- when pending: due (or leased) until then
    created_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT webhook_deliveries_endpoint_message_key UNIQUE (endpoint_id, message_id)
);
CREATE INDEX IF NOT EXISTS webhook_deliveries_due_idx ON webhook_deliveries (next_attempt_at) WHERE state = 'pending';
CREATE INDEX IF NOT EXISTS webhook_deliveries_created_at_idx ON webhook_deliveries (created_at);

-- Every attempt, for the customer's delivery log: when, which attempt, the answer and how long it took.
CREATE TABLE IF NOT EXISTS webhook_attempts (
    id            bigserial   PRIMARY KEY,
    delivery_id   bigint      NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    endpoint_id   uuid        NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    attempt       integer     NOT NULL,
    attempted_at  timestamptz NOT NULL DEFAULT now(),
    status_code   integer,                                    -- null: no HTTP answer (timeout, refused)
    duration_ms   integer     NOT NULL,
    error         text        NOT NULL DEFAULT '',
    response      text        NOT NULL DEFAULT ''             -- the start of the answer's body
);
CREATE INDEX IF NOT EXISTS webhook_attempts_endpoint_idx ON webhook_attempts (endpoint_id, attempted_at DESC);
CREATE INDEX IF NOT EXISTS webhook_attempts_delivery_idx ON webhook_attempts (delivery_id);
