-- Up Migration
-- A repository's own webhook secret (HMAC key for GitHub, token for GitLab); the global WEBHOOK_SECRET covers the rest.
ALTER TABLE repositories ADD COLUMN webhook_secret TEXT;

-- Every delivery seen, so a redelivery is acknowledged without a second reindex.
CREATE TABLE webhook_deliveries (
  provider      TEXT NOT NULL,
  delivery_id   TEXT NOT NULL,
  event         TEXT NOT NULL,
  repository_id BIGINT REFERENCES repositories(id) ON DELETE SET NULL,
  outcome       TEXT NOT NULL,
  job_id        TEXT,
  received_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
  PRIMARY KEY (provider, delivery_id)
);

-- Down Migration
DROP TABLE webhook_deliveries;
ALTER TABLE repositories DROP COLUMN webhook_secret;
