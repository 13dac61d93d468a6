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

-- ---- Events: the audit trail and the outbox (portal_core/events.py, portal_core/outbox.py) --------------
-- One row per fact ("artifact.created"), written in the same transaction as the change it records.
-- actor_id / owner_id are plain ids, not foreign keys: an erased user stays here only as a number.
CREATE TABLE IF NOT EXISTS events (
    id           bigserial   PRIMARY KEY,
    type         text        NOT NULL,
    occurred_at  timestamptz NOT NULL DEFAULT now(),
    actor_id     bigint,
    owner_id     bigint,
    subject_id   text,
    request_id   text,
    ip           text,
    user_agent   text,
    data         jsonb       NOT NULL DEFAULT '{}'::jsonb,
    -- The writing transaction: a reader that follows the table in (txid, id) order, up to the oldest
    -- transaction still running (pg_snapshot_xmin), never skips an event that commits late.
    txid         xid8        NOT NULL DEFAULT pg_current_xact_id()
);
CREATE INDEX IF NOT EXISTS events_occurred_at_idx ON events (occurred_at);
CREATE INDEX IF NOT EXISTS events_txid_idx ON events (txid, id);
CREATE INDEX IF NOT EXISTS events_owner_idx ON events (owner_id, id DESC) WHERE owner_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS events_actor_idx ON events (actor_id, id DESC) WHERE actor_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS events_type_idx ON events (type, id DESC);

-- The plugins that implement portal_event, as the running processes registered them (seen_at is
-- refreshed by housekeeping; a consumer no process has seen for a week is forgotten with its queue).
CREATE TABLE IF NOT EXISTS event_consumers (
    plugin         text        PRIMARY KEY,
    registered_at  timestamptz NOT NULL DEFAULT now(),
    seen_at        timestamptz NOT NULL DEFAULT now()
);

-- The outbox proper: one row per (event, consumer) still to deliver, created by a trigger in the
-- event's own transaction. A queue, not a high-water mark, so an event whose transaction commits after
-- a later id's is never skipped. A row is deleted once delivered; next_attempt_at doubles as the lease
-- of the process delivering it, so a delivery whose process died is picked up again.
CREATE TABLE IF NOT EXISTS event_deliveries (
    plugin           text        NOT NULL,
    event_id         bigint      NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    attempts         integer     NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    last_error       text,
    parked_at        timestamptz,
    PRIMARY KEY (plugin, event_id)
);
CREATE INDEX IF NOT EXISTS event_deliveries_due_idx ON event_deliveries (plugin, next_attempt_at)
    WHERE parked_at IS NULL;
CREATE INDEX IF NOT EXISTS event_deliveries_event_idx ON event_deliveries (event_id);

-- Functions are versioned by name and created only when missing, so an older build never replaces a
-- newer body; a new behaviour gets a new name (and a new trigger pointing at it).
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_proc WHERE proname = 'portal_events_fan_out_v1') THEN
        CREATE FUNCTION portal_events_fan_out_v1() RETURNS trigger LANGUAGE plpgsql AS $fn$
        BEGIN
            INSERT INTO event_deliveries (plugin, event_id) SELECT plugin, NEW.id FROM event_consumers;
            PERFORM pg_notify('portal_events', '');
            RETURN NULL;
        END
        $fn$;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'events_fan_out') THEN
        CREATE TRIGGER events_fan_out AFTER INSERT ON events
            FOR EACH ROW EXECUTE FUNCTION portal_events_fan_out_v1();
    END IF;
END
$$;

-- ---- Files table: sorting by name and by size (customer front end) ------------------------------------
-- GET /api/artifacts?sort=name|size pages by (key, id) per owner, as the created_at index serves the default.
CREATE INDEX IF NOT EXISTS artifacts_owner_name_idx ON artifacts (owner_id, lower(name), id);
CREATE INDEX IF NOT EXISTS artifacts_owner_size_idx ON artifacts (owner_id, size, id);

-- ---- Admin console: user controls, token scopes and expiry, site switches (portal_core/accounts.py, site.py) --
-- is_admin follows the identity provider at every sign-in, admin_granted is set by `portal admin grant-admin`
-- and survives sign-ins (the user is an admin when either is true). frozen_at set: every session and token of
-- the user is refused (checked in the credential query) and sign-in is refused, nothing is deleted.
-- limit_max_file / limit_quota: an admin's override of the plan's limits (NULL: the plan's).
ALTER TABLE users ADD COLUMN IF NOT EXISTS admin_granted boolean NOT NULL DEFAULT false;
ALTER TABLE users ADD COLUMN IF NOT EXISTS frozen_at timestamptz;
ALTER TABLE users ADD COLUMN IF NOT EXISTS limit_max_file bigint;
ALTER TABLE users ADD COLUMN IF NOT EXISTS limit_quota bigint;
ALTER TABLE users ADD COLUMN IF NOT EXISTS last_sign_in_at timestamptz;
CREATE INDEX IF NOT EXISTS users_email_idx ON users (lower(email));
-- Tokens made before scopes existed could do everything a user can with artifacts: they keep exactly that.
ALTER TABLE api_tokens ADD COLUMN IF NOT EXISTS scopes text[] NOT NULL DEFAULT '{artifacts:read,artifacts:write}';
ALTER TABLE api_tokens ADD COLUMN IF NOT EXISTS expires_at timestamptz;
-- Site switches (uploads_paused, signups_paused, read_only, banner): one row per switch, read by every
-- process every few seconds. A name an older build does not know is ignored by it.
CREATE TABLE IF NOT EXISTS site_settings (
    name        text        PRIMARY KEY,
    value       jsonb       NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    updated_by  bigint
);
-- The uploads-per-day chart of the overview counts artifact.created events by day.
CREATE INDEX IF NOT EXISTS events_type_occurred_idx ON events (type, occurred_at);

-- ---- Share links and file requests (portal_core/web/shares.py, portal_core/web/file_requests.py) ---------
-- A link's token is never stored: only its SHA-256 (like sessions and API tokens), so a copy of these
-- tables opens nothing. Rows go with their owner (ON DELETE CASCADE from users), and a share outlives its
-- artifact with artifact_id NULL, so the link can say the file was deleted (410) rather than not found.
CREATE TABLE IF NOT EXISTS shares (
    id             uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    owner_id       bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    artifact_id    uuid        REFERENCES artifacts (id) ON DELETE SET NULL,
    token_hash     bytea       NOT NULL UNIQUE,
    -- The file's name when shared, for the owner's list once the artifact is gone.
    artifact_name  text        NOT NULL,
    -- scrypt$<n>$<r>$<p>$<salt>$<hash> (portal_core/web/links.py), NULL for none.
    password_hash  text,
    expires_at     timestamptz NOT NULL,
    max_downloads  integer     CHECK (max_downloads > 0),
    downloads      integer     NOT NULL DEFAULT 0 CHECK (downloads >= 0),
    revoked_at     timestamptz,
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS shares_owner_idx ON shares (owner_id, created_at DESC);
CREATE INDEX IF NOT EXISTS shares_artifact_idx ON shares (artifact_id) WHERE artifact_id IS NOT NULL;

-- Wrong passwords per link, counted here so the lockout holds across every pod. An attempt is written
-- before the password is checked (and removed when it was right), so concurrent guesses cannot outrun it.
CREATE TABLE IF NOT EXISTS share_password_failures (
    id            bigserial   PRIMARY KEY,
    share_id      uuid        NOT NULL REFERENCES shares (id) ON DELETE CASCADE,
    attempted_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS share_password_failures_idx ON share_password_failures (share_id, attempted_at);

CREATE TABLE IF NOT EXISTS file_requests (
    id              uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    owner_id        bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash      bytea       NOT NULL UNIQUE,
    title           text        NOT NULL,
    expires_at      timestamptz NOT NULL,
    max_bytes       bigint      CHECK (max_bytes > 0),
    max_files       integer     CHECK (max_files > 0),
    received_files  integer     NOT NULL DEFAULT 0,
    received_bytes  bigint      NOT NULL DEFAULT 0,
    closed_at       timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS file_requests_owner_idx ON file_requests (owner_id, created_at DESC);
-- The request an artifact arrived through (NULL when the owner uploaded it).
ALTER TABLE artifacts ADD COLUMN IF NOT EXISTS file_request_id uuid REFERENCES file_requests (id) ON DELETE SET NULL;
CREATE INDEX IF NOT EXISTS artifacts_file_request_idx ON artifacts (file_request_id) WHERE file_request_id IS NOT NULL;

-- ---- Direct uploads: clients send parts straight to storage (portal_core/web/direct.py) ---------------------
-- One row per multipart upload a client has started and not yet completed. Its declared size counts
-- against the owner's quota (a reservation) until it is completed, aborted or expires. owner_id is not a
-- foreign key on purpose: deleting a user must not silently drop rows whose uploads still hold parts in
-- storage; housekeeping aborts the uploads of users that are gone (portal_core/pending_uploads.py).
CREATE TABLE IF NOT EXISTS direct_uploads (
    upload_id     text        PRIMARY KEY,
    storage_key   text        NOT NULL UNIQUE,
    owner_id      bigint      NOT NULL,
    name          text        NOT NULL,
    content_type  text        NOT NULL,
    size          bigint      NOT NULL CHECK (size >= 0),
    part_size     bigint      NOT NULL CHECK (part_size > 0),
    sha256        text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL,
    -- A lease: while set in the future one request or job is completing, aborting or expiring the upload.
    busy_until    timestamptz,
    -- Storage has joined the parts into the object (a completion that died after that is finished later).
    stored_at     timestamptz
);
CREATE INDEX IF NOT EXISTS direct_uploads_owner_idx ON direct_uploads (owner_id);
CREATE INDEX IF NOT EXISTS direct_uploads_expires_idx ON direct_uploads (expires_at);
-- A guest's direct upload through a file request (portal_core/web/request_direct.py): the request whose caps
-- it counts against. Not a foreign key, like owner_id: the upload is aborted in storage before its row goes.
ALTER TABLE direct_uploads ADD COLUMN IF NOT EXISTS file_request_id uuid;
CREATE INDEX IF NOT EXISTS direct_uploads_request_idx ON direct_uploads (file_request_id) WHERE file_request_id IS NOT NULL;

-- Whether an artifact's stored bytes are known to be what the client declared: "verified" (streamed
-- uploads are hashed on the way, so older builds' rows are verified), "unverified" (a direct upload not
-- yet read back) or "quarantined" (the bytes read back do not match; downloads are refused).
ALTER TABLE artifacts ADD COLUMN IF NOT EXISTS verification text NOT NULL DEFAULT 'verified';
ALTER TABLE artifacts ADD COLUMN IF NOT EXISTS verification_detail text;

-- The verification queue (portal_core/verification.py): one row per artifact still to read back and hash.
-- Claimed with FOR UPDATE SKIP LOCKED; next_attempt_at doubles as the lease of the process working on it.
CREATE TABLE IF NOT EXISTS artifact_verifications (
    artifact_id      uuid        PRIMARY KEY REFERENCES artifacts (id) ON DELETE CASCADE,
    attempts         integer     NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    last_error       text
);
CREATE INDEX IF NOT EXISTS artifact_verifications_due_idx ON artifact_verifications (next_attempt_at);

-- ---- Usage totals: what each user stores, kept by triggers on artifacts --------------------------------------
-- users.bytes_used / files_used are the sum(size) / count(*) of the user's artifacts, changed by the very
-- statement that inserts, deletes or resizes artifacts, in its transaction, whoever runs it (this build, an
-- older one, psql): so an upload's quota check and /api/me read one row instead of summing every artifact
-- (portal_core/web/upload.py). Statement-level where rows come in bulk (one UPDATE per owner, whatever the
-- number of rows). Backfilled once, when the triggers are made: CREATE TRIGGER locks artifacts against
-- writes until this transaction commits, so the backfill counts exactly the rows the triggers will not.
ALTER TABLE users ADD COLUMN IF NOT EXISTS bytes_used bigint NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN IF NOT EXISTS files_used bigint NOT NULL DEFAULT 0;
DO $$
BEGIN
    -- One function for every trigger below: a statement's rows summed per owner, added (INSERT: the NEW
    -- transition table) or taken away (DELETE: the OLD one); a row whose size or owner changed, moved;
    -- TRUNCATE, everything back to zero.
    IF NOT EXISTS (SELECT 1 FROM pg_proc WHERE proname = 'portal_usage_changed_v1') THEN
        CREATE FUNCTION portal_usage_changed_v1() RETURNS trigger LANGUAGE plpgsql AS $fn$
        BEGIN
            IF TG_OP = 'TRUNCATE' THEN
                UPDATE users SET bytes_used = 0, files_used = 0 WHERE bytes_used <> 0 OR files_used <> 0;
            ELSIF TG_OP = 'UPDATE' THEN
                UPDATE users SET bytes_used = bytes_used - OLD.size, files_used = files_used - 1 WHERE id = OLD.owner_id;
                UPDATE users SET bytes_used = bytes_used + NEW.size, files_used = files_used + 1 WHERE id = NEW.owner_id;
            ELSE
                EXECUTE format('UPDATE users u SET bytes_used = u.bytes_used %1$s d.bytes, files_used = u.files_used %1$s d.files'
                               ' FROM (SELECT owner_id, sum(size) AS bytes, count(*) AS files FROM %2$I GROUP BY owner_id) d'
                               ' WHERE u.id = d.owner_id',
                               CASE TG_OP WHEN 'INSERT' THEN '+' ELSE '-' END,
                               CASE TG_OP WHEN 'INSERT' THEN 'usage_new' ELSE 'usage_old' END);
            END IF;
            RETURN NULL;
        END
        $fn$;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'artifacts_usage_inserted') THEN
        CREATE TRIGGER artifacts_usage_inserted AFTER INSERT ON artifacts REFERENCING NEW TABLE AS usage_new
            FOR EACH STATEMENT EXECUTE FUNCTION portal_usage_changed_v1();
        CREATE TRIGGER artifacts_usage_deleted AFTER DELETE ON artifacts REFERENCING OLD TABLE AS usage_old
            FOR EACH STATEMENT EXECUTE FUNCTION portal_usage_changed_v1();
        CREATE TRIGGER artifacts_usage_updated AFTER UPDATE OF owner_id, size ON artifacts FOR EACH ROW
            WHEN (OLD.owner_id IS DISTINCT FROM NEW.owner_id OR OLD.size IS DISTINCT FROM NEW.size)
            EXECUTE FUNCTION portal_usage_changed_v1();
        CREATE TRIGGER artifacts_usage_truncated AFTER TRUNCATE ON artifacts
            FOR EACH STATEMENT EXECUTE FUNCTION portal_usage_changed_v1();
        UPDATE users u SET bytes_used = COALESCE(s.bytes, 0), files_used = COALESCE(s.files, 0)
        FROM users x LEFT JOIN (SELECT owner_id, sum(size) AS bytes, count(*) AS files
                                FROM artifacts GROUP BY owner_id) s ON s.owner_id = x.id
        WHERE u.id = x.id AND (u.bytes_used, u.files_used) IS DISTINCT FROM (COALESCE(s.bytes, 0), COALESCE(s.files, 0));
    END IF;
END
$$;
-- Listing by name pages through an index-only scan of (owner_id, lower(name), id), then reads only the
-- page's rows (portal_core/web/artifacts.py): PostgreSQL reads no expression back from an index, so the
-- name itself is included. By date and by size the indexes above already serve that scan.
CREATE INDEX IF NOT EXISTS artifacts_owner_name_cover_idx ON artifacts (owner_id, lower(name), id) INCLUDE (name);
