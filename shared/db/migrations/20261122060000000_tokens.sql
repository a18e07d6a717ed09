-- Up Migration
-- API bearer tokens. One row per token value, and only the value's SHA-256 is
-- stored: a database dump yields no usable token. Rows are never deleted, so
-- that revoked and rotated values stay visible for audit.
CREATE TABLE api_tokens (
  id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  name         TEXT NOT NULL CHECK (name ~ '^[A-Za-z0-9._-]{1,64}$'),
  token_hash   TEXT NOT NULL UNIQUE CHECK (token_hash ~ '^[0-9a-f]{64}$'),
  scopes       TEXT[] NOT NULL CHECK (cardinality(scopes) > 0 AND scopes <@ ARRAY['read', 'write', 'admin']),
  -- Instance names, or '{*}' for every instance configured now or later.
  instances    TEXT[] NOT NULL CHECK (cardinality(instances) > 0),
  created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
  -- For a rotated value this is the end of its grace period.
  expires_at   TIMESTAMPTZ,
  last_used_at TIMESTAMPTZ,
  revoked_at   TIMESTAMPTZ,
  -- Rotation keeps the old value as its own row (with its own last_used_at, so
  -- one can see whether clients still use it during the grace period).
  rotated_at   TIMESTAMPTZ,
  rotated_from BIGINT REFERENCES api_tokens(id)
);
-- A name belongs to one current token; revoked and rotated rows free it, so
-- `token create` can reuse the name of a revoked token.
CREATE UNIQUE INDEX api_tokens_current_name_idx ON api_tokens (name) WHERE revoked_at IS NULL AND rotated_at IS NULL;
CREATE INDEX api_tokens_name_idx ON api_tokens (name);

-- Who changed what, for security-relevant changes (token create, revoke, rotate).
CREATE TABLE audit_log (
  id      BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  at      TIMESTAMPTZ NOT NULL DEFAULT now(),
  -- The acting token's name, or 'cli' / 'bootstrap' for local operators.
  actor   TEXT NOT NULL,
  action  TEXT NOT NULL,
  target  TEXT,
  details JSONB NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_at_idx ON audit_log (at);

-- Down Migration
DROP TABLE audit_log;
DROP TABLE api_tokens;
