-- Up Migration
-- Code-graph extraction of the files a run changed, waiting for the run's graph batches to write it to Neo4j.
CREATE TABLE graph_staging (
  run_id        TEXT NOT NULL,
  repository_id BIGINT NOT NULL,
  path          TEXT NOT NULL,
  batch         INTEGER NOT NULL,
  graph         JSONB NOT NULL,
  PRIMARY KEY (run_id, path)
);
CREATE INDEX graph_staging_batch_idx ON graph_staging (run_id, batch);
CREATE INDEX graph_staging_repo_idx ON graph_staging (repository_id);

-- Down Migration
DROP TABLE graph_staging;
