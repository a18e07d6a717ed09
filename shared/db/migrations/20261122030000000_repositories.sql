-- Up Migration
-- Repositories the platform indexes. Later migrations add files, chunks and
-- the graph bookkeeping; this table is the root every other row hangs off.
CREATE TABLE repositories (
  id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  name           TEXT NOT NULL UNIQUE CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$'),
  instance       TEXT NOT NULL DEFAULT 'private',
  source_url     TEXT,
  local_path     TEXT,
  default_branch TEXT,
  include_globs  TEXT[] NOT NULL DEFAULT '{}',
  exclude_globs  TEXT[] NOT NULL DEFAULT '{}',
  created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
  updated_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
  CHECK ((source_url IS NULL) <> (local_path IS NULL))
);

-- Down Migration
DROP TABLE repositories;
