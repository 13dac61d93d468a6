-- The portal's schema. Applied at every start, in one transaction under an advisory lock, before the
-- port opens (portal_core/db.py). Rules, so that several pods can start at once and an older build can
-- run against a database a newer build provisioned:
--   * only CREATE ... IF NOT EXISTS, ADD COLUMN IF NOT EXISTS, and DO blocks that check the catalog;
--   * never DROP, RENAME or change the type of anything: a rollback must leave newer objects alone;
--   * a new NOT NULL column needs a DEFAULT, so older builds' INSERTs still work.

CREATE TABLE IF NOT EXISTS schema_applies (
    id             bigserial PRIMARY KEY,
    schema_hash    text        NOT NULL,
    portal_version text        NOT NULL,
    plugins        text[]      NOT NULL DEFAULT '{}',
    applied_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS users (
    id          bigserial PRIMARY KEY,
    issuer      text        NOT NULL,
    subject     text        NOT NULL,
    email       text        NOT NULL DEFAULT '',
    name        text        NOT NULL DEFAULT '',
    is_admin    boolean     NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT users_issuer_subject_key UNIQUE (issuer, subject)
);

-- Server-side sessions. The cookie holds a random 256-bit id; only its SHA-256 is stored, so a copy of
-- this table cannot be replayed. user_id is NULL for a pre-login session (it carries login state).
CREATE TABLE IF NOT EXISTS sessions (
    id_hash       bytea       PRIMARY KEY,
    user_id       bigint      REFERENCES users (id) ON DELETE CASCADE,
    csrf_token    text        NOT NULL,
    data          jsonb       NOT NULL DEFAULT '{}'::jsonb,
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_seen_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS sessions_user_id_idx ON sessions (user_id);
CREATE INDEX IF NOT EXISTS sessions_last_seen_at_idx ON sessions (last_seen_at);

-- API tokens: only the SHA-256 of the secret is stored; the secret is shown once at creation.
CREATE TABLE IF NOT EXISTS api_tokens (
    id            uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id       bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name          text        NOT NULL,
    token_hash    bytea       NOT NULL UNIQUE,
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_used_at  timestamptz
);
CREATE INDEX IF NOT EXISTS api_tokens_user_id_idx ON api_tokens (user_id);

-- Artifacts: a row exists only once its object is completely stored. storage_key is generated
-- (<user id>/<uuid>), never derived from the filename.
CREATE TABLE IF NOT EXISTS artifacts (
    id            uuid        PRIMARY KEY,
    owner_id      bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name          text        NOT NULL,
    size          bigint      NOT NULL CHECK (size >= 0),
    content_type  text        NOT NULL,
    sha256        text        NOT NULL,
    storage_key   text        NOT NULL UNIQUE,
    created_at    timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX IF NOT EXISTS artifacts_owner_created_idx ON artifacts (owner_id, created_at DESC, id DESC);

-- A user's plan, whichever billing backend writes it (dev stub or Stripe). No row means "free".
CREATE TABLE IF NOT EXISTS subscriptions (
    user_id               bigint      PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    plan                  text        NOT NULL DEFAULT 'free',
    status                text        NOT NULL DEFAULT 'none',
    provider              text        NOT NULL DEFAULT '',
    customer_id           text,
    subscription_id       text,
    current_period_end    timestamptz,
    cancel_at_period_end  boolean     NOT NULL DEFAULT false,
    updated_at            timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX IF NOT EXISTS subscriptions_customer_idx ON subscriptions (provider, customer_id)
    WHERE customer_id IS NOT NULL;

-- ---- Files table: sorting by name and by size (customer front end) ------------------------------------
-- GET /api/artifacts?sort=name|size pages by (key, id) per owner, as the created_at index serves the default.
CREATE INDEX IF NOT EXISTS artifacts_owner_name_idx ON artifacts (owner_id, lower(name), id);
CREATE INDEX IF NOT EXISTS artifacts_owner_size_idx ON artifacts (owner_id, size, id);
