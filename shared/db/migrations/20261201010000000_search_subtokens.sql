-- Up Migration
-- Full text by code sub-tokens (shared/search/code-tokens.ts): Postgres'
-- parser keeps `getUserName` as one lexeme and `inst.refine` or
-- `this._def.checks` as one "host" lexeme each, so the words inside them
-- could only be found through prefix patterns, which expand to thousands of
-- GIN entries and made full text the costliest part of a search. The worker
-- now splits the text (JavaScript's regular expressions do it about 4× faster
-- than Postgres') and the staging insert turns it into the tsvector; publishing
-- copies it. The column is no longer generated.
-- Chunks indexed before, and those of runs staged but not yet published: the
-- same split, done once here (the next reindex of a file writes the worker's own).
CREATE FUNCTION pg_temp.code_subtokens(t TEXT) RETURNS TEXT LANGUAGE sql IMMUTABLE STRICT AS $$
  SELECT regexp_replace(regexp_replace(left(t, 100000), '[^[:alnum:]]+', ' ', 'g'),
    '(?<=[[:lower:][:digit:]])(?=[[:upper:]])|(?<=[[:upper:]])(?=[[:upper:]][[:lower:]])', ' ', 'g')
$$;
CREATE FUNCTION pg_temp.chunk_search_vector(symbol TEXT, path TEXT, content TEXT) RETURNS TSVECTOR LANGUAGE sql IMMUTABLE AS $$
  SELECT setweight(to_tsvector('simple', regexp_replace(coalesce(symbol, ''), '[^[:alnum:]]+', ' ', 'g') || ' ' || pg_temp.code_subtokens(coalesce(symbol, ''))), 'A') ||
         setweight(to_tsvector('simple', pg_temp.code_subtokens(path)), 'B') ||
         setweight(to_tsvector('simple', pg_temp.code_subtokens(content)), 'C')
$$;

ALTER TABLE chunk_staging ADD COLUMN search_vector TSVECTOR;
UPDATE chunk_staging SET search_vector = pg_temp.chunk_search_vector(symbol, path, content);
ALTER TABLE chunk_staging ALTER COLUMN search_vector SET NOT NULL;

ALTER TABLE chunks DROP COLUMN search_vector;
ALTER TABLE chunks ADD COLUMN search_vector TSVECTOR;
UPDATE chunks SET search_vector = pg_temp.chunk_search_vector(symbol, path, content);
ALTER TABLE chunks ALTER COLUMN search_vector SET NOT NULL;
CREATE INDEX chunks_search_idx ON chunks USING GIN (search_vector);

-- Full-text candidates, best first (see chunk.repository.ts fullText): the
-- chunks matching every word, then, when fewer than `enough` do, those
-- matching any. Ranking reads each candidate's tsvector, so only a bounded
-- number of matches is ranked. A function for two reasons: it runs with seq
-- scans off (with a LIMIT over a match estimated at thousands of rows the
-- planner prefers a seq scan that stops at the first matches, but matches
-- cluster, one package's files sit together, so it reads and detoasts most of
-- the table first: 45 ms instead of 5 ms through the GIN bitmap on the
-- benchmark corpus), and PL/pgSQL keeps its plans, which took as long to make
-- as the query took to run.
CREATE FUNCTION search_chunk_ids(
  q_all TSQUERY, q_any TSQUERY, lang TEXT, enough INTEGER, repo_ids BIGINT[], branches TEXT[],
  lim INTEGER, all_candidates INTEGER, any_candidates INTEGER
) RETURNS TABLE (id TEXT)
  LANGUAGE plpgsql STABLE
  SET enable_seqscan = off
AS $$
DECLARE
  found_all INTEGER;
BEGIN
  RETURN QUERY
    SELECT c.id FROM (
      SELECT c.id, ts_rank(c.search_vector, q_all) AS rank FROM (
        SELECT c.id, c.search_vector FROM chunks c
         WHERE c.search_vector @@ q_all AND (lang IS NULL OR c.language = lang)
           AND (repo_ids IS NULL OR (c.repository_id, c.branch) IN (SELECT * FROM unnest(repo_ids, branches)))
         LIMIT all_candidates
      ) c
    ) c
    ORDER BY c.rank DESC, c.id
    LIMIT lim;
  GET DIAGNOSTICS found_all = ROW_COUNT;
  IF q_any IS NULL OR found_all >= enough THEN
    RETURN;
  END IF;
  -- Fewer than `enough` (at most lim) matched every word: all of them were found above.
  RETURN QUERY
    SELECT c.id FROM (
      SELECT c.id, ts_rank(c.search_vector, q_any) AS rank FROM (
        SELECT c.id, c.search_vector FROM chunks c
         WHERE c.search_vector @@ q_any AND NOT (c.search_vector @@ q_all) AND (lang IS NULL OR c.language = lang)
           AND (repo_ids IS NULL OR (c.repository_id, c.branch) IN (SELECT * FROM unnest(repo_ids, branches)))
         LIMIT any_candidates
      ) c
    ) c
    ORDER BY c.rank DESC, c.id
    LIMIT lim - found_all;
END
$$;

-- Down Migration
DROP FUNCTION search_chunk_ids(TSQUERY, TSQUERY, TEXT, INTEGER, BIGINT[], TEXT[], INTEGER, INTEGER, INTEGER);
ALTER TABLE chunks DROP COLUMN search_vector;
ALTER TABLE chunks ADD COLUMN search_vector TSVECTOR GENERATED ALWAYS AS (
  setweight(to_tsvector('simple', coalesce(symbol, '')), 'A') ||
  setweight(to_tsvector('simple', regexp_replace(path, '[/._-]', ' ', 'g')), 'B') ||
  setweight(to_tsvector('simple', left(content, 100000)), 'C')
) STORED;
CREATE INDEX chunks_search_idx ON chunks USING GIN (search_vector);
ALTER TABLE chunk_staging DROP COLUMN search_vector;
