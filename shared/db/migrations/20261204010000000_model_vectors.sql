-- Up Migration
-- Which live chunks have a vector from the local embedding model (the background tier,
-- shared/semantic/): a run publishes with fast vectors at once, and a low-priority job
-- fills these in afterwards. A row goes with its chunk. `text_hash` keys the embedding
-- cache for the text the model saw (the chunk under its path-and-symbol header), so a
-- text is embedded once ever, whichever branch or repository holds it. A chunk the
-- model failed on, after retries, is recorded as failed and skipped, so it never holds
-- a branch's coverage back for good.
CREATE TABLE chunk_model_vectors (
  model_id  TEXT NOT NULL,
  chunk_id  TEXT NOT NULL REFERENCES chunks(id) ON DELETE CASCADE,
  text_hash TEXT NOT NULL,
  status    TEXT NOT NULL CHECK (status IN ('ok', 'failed')),
  error     TEXT,
  PRIMARY KEY (model_id, chunk_id)
);
CREATE INDEX chunk_model_vectors_chunk_idx ON chunk_model_vectors (chunk_id);

-- Down Migration
DROP TABLE chunk_model_vectors;
