-- Up Migration
-- Branches of a repository that are indexed, each with the commit readers see.
CREATE TABLE repository_branches (
  repository_id   BIGINT NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
  branch          TEXT NOT NULL,
  -- The commit every reader sees: moved forward only by a run's finishing step.
  indexed_commit  TEXT,
  status          TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'indexing', 'ready', 'failed')),
  last_error      TEXT,
  last_job_id     TEXT,
  indexed_at      TIMESTAMPTZ,
  file_count      INTEGER NOT NULL DEFAULT 0,
  chunk_count     INTEGER NOT NULL DEFAULT 0,
  created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
  updated_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
  PRIMARY KEY (repository_id, branch)
);

-- Files of the indexed commit of each branch.
CREATE TABLE files (
  repository_id BIGINT NOT NULL,
  branch        TEXT NOT NULL,
  path          TEXT NOT NULL,
  -- Git blob id: equal ids mean equal content, so unchanged files are found without reading them.
  blob_sha      TEXT NOT NULL,
  language      TEXT,
  size_bytes    INTEGER NOT NULL,
  chunk_count   INTEGER NOT NULL,
  PRIMARY KEY (repository_id, branch, path),
  FOREIGN KEY (repository_id, branch) REFERENCES repository_branches(repository_id, branch) ON DELETE CASCADE
);

-- Chunks readers see. The id is also the ChromaDB record id.
CREATE TABLE chunks (
  id            TEXT PRIMARY KEY,
  repository_id BIGINT NOT NULL,
  branch        TEXT NOT NULL,
  path          TEXT NOT NULL,
  ordinal       INTEGER NOT NULL,
  start_line    INTEGER NOT NULL,
  end_line      INTEGER NOT NULL,
  symbol        TEXT,
  kind          TEXT NOT NULL,
  language      TEXT,
  content_hash  TEXT NOT NULL,
  content       TEXT NOT NULL,
  -- 'simple' config: code identifiers must not be stemmed or dropped as stop words.
  search_vector TSVECTOR GENERATED ALWAYS AS (
    setweight(to_tsvector('simple', coalesce(symbol, '')), 'A') ||
    setweight(to_tsvector('simple', regexp_replace(path, '[/._-]', ' ', 'g')), 'B') ||
    setweight(to_tsvector('simple', left(content, 100000)), 'C')
  ) STORED,
  FOREIGN KEY (repository_id, branch, path) REFERENCES files(repository_id, branch, path) ON DELETE CASCADE
);
CREATE INDEX chunks_file_idx ON chunks (repository_id, branch, path);
CREATE INDEX chunks_search_idx ON chunks USING GIN (search_vector);

-- Chunks a run has prepared but not yet published; its finishing step moves them into `chunks` in one transaction.
CREATE TABLE chunk_staging (
  run_id        TEXT NOT NULL,
  id            TEXT NOT NULL,
  repository_id BIGINT NOT NULL,
  branch        TEXT NOT NULL,
  path          TEXT NOT NULL,
  ordinal       INTEGER NOT NULL,
  start_line    INTEGER NOT NULL,
  end_line      INTEGER NOT NULL,
  symbol        TEXT,
  kind          TEXT NOT NULL,
  language      TEXT,
  content_hash  TEXT NOT NULL,
  content       TEXT NOT NULL,
  batch         INTEGER NOT NULL,
  PRIMARY KEY (run_id, id)
);
CREATE INDEX chunk_staging_batch_idx ON chunk_staging (run_id, batch);
CREATE INDEX chunk_staging_repo_idx ON chunk_staging (repository_id);

-- File-level changes a run will publish: upserts (with their new blob) and deletions.
CREATE TABLE file_staging (
  run_id      TEXT NOT NULL,
  repository_id BIGINT NOT NULL,
  path        TEXT NOT NULL,
  blob_sha    TEXT,
  language    TEXT,
  size_bytes  INTEGER,
  chunk_count INTEGER,
  deleted     BOOLEAN NOT NULL,
  PRIMARY KEY (run_id, path)
);

-- Embeddings by content: the same text under the same model is never embedded twice.
CREATE TABLE embedding_cache (
  model_id     TEXT NOT NULL,
  content_hash TEXT NOT NULL,
  embedding    BYTEA NOT NULL,
  created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
  PRIMARY KEY (model_id, content_hash)
);

-- Down Migration
DROP TABLE embedding_cache;
DROP TABLE file_staging;
DROP TABLE chunk_staging;
DROP TABLE chunks;
DROP TABLE files;
DROP TABLE repository_branches;
