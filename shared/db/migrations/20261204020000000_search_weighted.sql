-- Up Migration
-- Full-text candidates for a question of several words, scored by how rare
-- each matched word is (chunk.repository.ts fullTextWeighted): a plain-English
-- question rarely has every word in one chunk, and "any word" alone matched a
-- sample of thousands of chunks in no useful order ("request" and "id" are
-- everywhere; "unique" is not). Each candidate scores the weights of the terms
-- it holds, plus half again where a term is in its symbol or path (weights A,
-- B). Candidates are the chunks holding any of the `seed` terms (the rarer
-- ones), bounded; the words too common to seed still count in the score.
-- Seq scans are off for the reason given with search_chunk_ids.
CREATE FUNCTION search_chunks_weighted(
  q_seed TSQUERY, terms TEXT[], named TEXT[], weights FLOAT8[], lang TEXT, repo_ids BIGINT[], branches TEXT[],
  lim INTEGER, candidates INTEGER
) RETURNS TABLE (id TEXT, score FLOAT8)
  LANGUAGE plpgsql STABLE
  SET enable_seqscan = off
AS $$
BEGIN
  -- Each candidate's tsvector is copied out of TOAST once (the concatenation builds a plain value in the
  -- materialized row set): tested against every term in place, it was decompressed once per term, and a
  -- question of eight words over 800 candidates cost 45 ms instead of a few.
  RETURN QUERY
    WITH c AS MATERIALIZED (
      SELECT c.id, c.search_vector || ''::tsvector AS sv FROM chunks c
       WHERE c.search_vector @@ q_seed AND (lang IS NULL OR c.language = lang)
         AND (repo_ids IS NULL OR (c.repository_id, c.branch) IN (SELECT * FROM unnest(repo_ids, branches)))
       LIMIT candidates
    ), t AS MATERIALIZED (
      SELECT to_tsquery('simple', x.term) AS q, to_tsquery('simple', x.name) AS qn, x.w
        FROM unnest(terms, named, weights) AS x(term, name, w)
    )
    SELECT c.id, sum(CASE WHEN c.sv @@ t.q THEN t.w ELSE 0 END + CASE WHEN c.sv @@ t.qn THEN t.w / 2 ELSE 0 END) AS score
      FROM c CROSS JOIN t
     GROUP BY c.id
     ORDER BY score DESC, c.id
     LIMIT lim;
END
$$;

-- Down Migration
DROP FUNCTION search_chunks_weighted(TSQUERY, TEXT[], TEXT[], FLOAT8[], TEXT, BIGINT[], TEXT[], INTEGER, INTEGER);
