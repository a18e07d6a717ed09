-- Up Migration
-- Secret rotation (shared/secrets/). A rotated webhook secret keeps working until its deadline, so the
-- senders (GitHub, GitLab) can be switched to the new value meanwhile: a repository's own previous secret
-- sits beside it, the global one (WEBHOOK_SECRET_FILE) in secret_grace.
ALTER TABLE repositories
  ADD COLUMN previous_webhook_secret       TEXT,
  ADD COLUMN previous_webhook_secret_until TIMESTAMPTZ;

-- The previous value of a file-backed secret still accepted (today: the global webhook secret), until valid_until.
CREATE TABLE secret_grace (
  name           TEXT PRIMARY KEY,
  previous_value TEXT NOT NULL,
  valid_until    TIMESTAMPTZ NOT NULL,
  rotated_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Tokens marked for rotation (`token create --rotate-every 30d`): `secrets rotate` gives them a new value once
-- the current one is this old, and writes it to the secrets folder as token-<name>.
ALTER TABLE api_tokens ADD COLUMN rotate_every_ms BIGINT CHECK (rotate_every_ms > 0);

-- Down Migration
ALTER TABLE api_tokens DROP COLUMN rotate_every_ms;
DROP TABLE secret_grace;
ALTER TABLE repositories DROP COLUMN previous_webhook_secret_until, DROP COLUMN previous_webhook_secret;
