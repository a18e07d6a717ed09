import type pg from 'pg';
import { codeSubtokens, codeWordsAndParts } from '../search/code-tokens.ts';
import type { GraphFileInput } from './graph.store.ts';
import { catalogCache } from './repository.repository.ts';
import type { PostgresConnection } from './postgres.connection.ts';

export interface StagedChunk {
  id: string;
  path: string;
  ordinal: number;
  startLine: number;
  endLine: number;
  symbol: string | null;
  kind: string;
  language: string | null;
  contentHash: string;
  content: string;
  batch: number;
}

export type StagedFile =
  | { path: string; deleted: true }
  | { path: string; deleted: false; blobSha: string; language: string | null; sizeBytes: number; chunkCount: number };

export interface LiveChunk {
  id: string;
  repositoryId: number;
  branch: string;
  path: string;
  startLine: number;
  endLine: number;
  symbol: string | null;
  kind: string;
  language: string | null;
  content: string;
}

/**
 * Full-text matches ranked per query: all terms (usually few match), any term
 * (often most of the index). Ranking reads and detoasts each candidate's
 * tsvector: 1,000 all-terms candidates made common words (`set with`, `date`)
 * cost 15-23 ms of Postgres CPU, 300 cost under 9.
 */
const ALL_TERMS_CANDIDATES = 300;
const ANY_TERM_CANDIDATES = 100;

interface LexemeStats {
  /** Share of chunks holding each of the most common lexemes. */
  shares: Map<string, number>;
  /** Share assumed for a lexeme not among them: rarer than the rarest of them. */
  rare: number;
}

const LEXEME_STATS_TTL_MS = 60_000;
/** Before the first ANALYZE (small indexes) there are no statistics: every word weighs the same. */
const NO_STATS_SHARE = 0.01;
/** Words in more than this share of chunks do not choose candidates (they still score). */
const SEED_MAX_SHARE = 0.05;
/** Chunks scored per query: each costs a read of its tsvector. */
const WEIGHTED_CANDIDATES = 800;

/** Chunks inserted or removed by one publish from which the full-text index and statistics are settled at once. */
const SETTLE_AFTER_CHANGED_ROWS = 2000;

/** Rows per INSERT: Postgres allows 65,535 parameters per statement. */
const INSERT_ROWS = 1000;

function toLiveChunk(row: Record<string, unknown>): LiveChunk {
  return {
    id: row.id as string,
    repositoryId: Number(row.repository_id),
    branch: row.branch as string,
    path: row.path as string,
    startLine: row.start_line as number,
    endLine: row.end_line as number,
    symbol: row.symbol as string | null,
    kind: row.kind as string,
    language: row.language as string | null,
    content: row.content as string,
  };
}

/**
 * Files, chunks, the staging area of runs in progress and the embedding cache.
 * A run stages everything first; `publish` moves it into the live tables and
 * moves the branch's commit forward in one transaction, so readers see either
 * the old commit or the new one, never a mixture.
 */
export function createChunkRepository(pg: PostgresConnection) {
  let stats: { at: number; value: Promise<LexemeStats> } | undefined;
  /** The search column's most common lexemes with their share of chunks, read from pg_stats at most once a minute. */
  function lexemeStats(): Promise<LexemeStats> {
    if (!stats || Date.now() - stats.at > LEXEME_STATS_TTL_MS) {
      const value = pg.pool
        .query<{ elems: string[] | null; freqs: number[] | null }>(
          `SELECT most_common_elems::text::text[] AS elems, most_common_elem_freqs AS freqs
             FROM pg_stats WHERE schemaname = current_schema() AND tablename = 'chunks' AND attname = 'search_vector'`,
        )
        .then(({ rows }) => {
          const { elems, freqs } = rows[0] ?? { elems: null, freqs: null };
          if (!elems || !freqs || freqs.length < elems.length + 2) return { shares: new Map<string, number>(), rare: NO_STATS_SHARE };
          // The frequencies are followed by their minimum, their maximum and the share of empty vectors.
          const min = freqs[elems.length]!;
          return { shares: new Map(elems.map((e, i) => [e, freqs[i]!])), rare: Math.max(min / 2, 1e-5) };
        });
      value.catch(() => (stats = undefined));
      stats = { at: Date.now(), value };
    }
    return stats.value;
  }

  return {
    /** path → blob id of the branch's live files. */
    async liveFiles(repositoryId: number, branch: string): Promise<Map<string, string>> {
      const { rows } = await pg.pool.query<{ path: string; blob_sha: string }>(
        `SELECT path, blob_sha FROM files WHERE repository_id = $1 AND branch = $2`,
        [repositoryId, branch],
      );
      return new Map(rows.map((r) => [r.path, r.blob_sha]));
    },

    /** Drops whatever an earlier attempt of the same run staged, so a retried run starts clean. */
    async clearStaging(runId: string): Promise<void> {
      await pg.pool.query(`DELETE FROM chunk_staging WHERE run_id = $1`, [runId]);
      await pg.pool.query(`DELETE FROM file_staging WHERE run_id = $1`, [runId]);
      await pg.pool.query(`DELETE FROM graph_staging WHERE run_id = $1`, [runId]);
    },

    async stageGraph(runId: string, repositoryId: number, rows: Array<{ path: string; batch: number; graph: GraphFileInput }>): Promise<void> {
      for (let i = 0; i < rows.length; i += INSERT_ROWS) {
        const slice = rows.slice(i, i + INSERT_ROWS);
        await pg.pool.query(
          `INSERT INTO graph_staging (run_id, repository_id, path, batch, graph)
           SELECT $1::text, $2::bigint, * FROM unnest($3::text[], $4::int[], $5::jsonb[])
           ON CONFLICT (run_id, path) DO UPDATE SET batch = excluded.batch, graph = excluded.graph`,
          [runId, repositoryId, slice.map((r) => r.path), slice.map((r) => r.batch), slice.map((r) => JSON.stringify(r.graph))],
        );
      }
    },

    async stagedGraphBatch(runId: string, batch: number): Promise<GraphFileInput[]> {
      const { rows } = await pg.pool.query<{ graph: GraphFileInput }>(
        `SELECT graph FROM graph_staging WHERE run_id = $1 AND batch = $2 ORDER BY path`,
        [runId, batch],
      );
      return rows.map((r) => r.graph);
    },

    /** What a run changes in the graph: files it rewrites, and files whose graph must go (deleted, or no longer extractable). */
    async stagedGraphChanges(runId: string): Promise<{ written: string[]; removed: string[] }> {
      const { rows } = await pg.pool.query<{ path: string; written: boolean }>(
        `SELECT f.path, (g.path IS NOT NULL) AS written
           FROM file_staging f LEFT JOIN graph_staging g ON g.run_id = f.run_id AND g.path = f.path
          WHERE f.run_id = $1`,
        [runId],
      );
      return { written: rows.filter((r) => r.written).map((r) => r.path), removed: rows.filter((r) => !r.written).map((r) => r.path) };
    },

    async stageFiles(runId: string, repositoryId: number, files: StagedFile[]): Promise<void> {
      for (let i = 0; i < files.length; i += INSERT_ROWS) {
        const slice = files.slice(i, i + INSERT_ROWS);
        await pg.pool.query(
          `INSERT INTO file_staging (run_id, repository_id, path, blob_sha, language, size_bytes, chunk_count, deleted)
           SELECT $1::text, $2::bigint, * FROM unnest($3::text[], $4::text[], $5::text[], $6::int[], $7::int[], $8::bool[])
           ON CONFLICT (run_id, path) DO UPDATE SET blob_sha = excluded.blob_sha, language = excluded.language,
             size_bytes = excluded.size_bytes, chunk_count = excluded.chunk_count, deleted = excluded.deleted`,
          [
            runId,
            repositoryId,
            slice.map((f) => f.path),
            slice.map((f) => (f.deleted ? null : f.blobSha)),
            slice.map((f) => (f.deleted ? null : f.language)),
            slice.map((f) => (f.deleted ? null : f.sizeBytes)),
            slice.map((f) => (f.deleted ? null : f.chunkCount)),
            slice.map((f) => f.deleted),
          ],
        );
      }
    },

    async stageChunks(runId: string, repositoryId: number, branch: string, chunks: StagedChunk[]): Promise<void> {
      for (let i = 0; i < chunks.length; i += INSERT_ROWS) {
        const slice = chunks.slice(i, i + INSERT_ROWS);
        // The full-text vector is made here from the worker's sub-token split (code-tokens.ts).
        await pg.pool.query(
          `INSERT INTO chunk_staging (run_id, repository_id, branch, id, path, ordinal, start_line, end_line, symbol, kind, language, content_hash, content, batch, search_vector)
           SELECT $1::text, $2::bigint, $3::text, u.id, u.path, u.ordinal, u.start_line, u.end_line, u.symbol, u.kind, u.language, u.content_hash, u.content, u.batch,
                  setweight(to_tsvector('simple', u.symbol_words), 'A') || setweight(to_tsvector('simple', u.path_words), 'B') ||
                  setweight(to_tsvector('simple', u.content_words), 'C')
             FROM unnest($4::text[], $5::text[], $6::int[], $7::int[], $8::int[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::int[],
                         $15::text[], $16::text[], $17::text[])
               AS u(id, path, ordinal, start_line, end_line, symbol, kind, language, content_hash, content, batch, symbol_words, path_words, content_words)
           ON CONFLICT (run_id, id) DO NOTHING`,
          [
            runId,
            repositoryId,
            branch,
            slice.map((c) => c.id),
            slice.map((c) => c.path),
            slice.map((c) => c.ordinal),
            slice.map((c) => c.startLine),
            slice.map((c) => c.endLine),
            slice.map((c) => c.symbol),
            slice.map((c) => c.kind),
            slice.map((c) => c.language),
            slice.map((c) => c.contentHash),
            slice.map((c) => c.content.replaceAll('\0', '')),
            slice.map((c) => c.batch),
            slice.map((c) => codeWordsAndParts(c.symbol ?? '')),
            slice.map((c) => codeSubtokens(c.path)),
            slice.map((c) => codeSubtokens(c.content)),
          ],
        );
      }
    },

    async stagedBatch(runId: string, batch: number): Promise<StagedChunk[]> {
      const { rows } = await pg.pool.query(
        `SELECT id, path, ordinal, start_line, end_line, symbol, kind, language, content_hash, content, batch
           FROM chunk_staging WHERE run_id = $1 AND batch = $2 ORDER BY path, ordinal`,
        [runId, batch],
      );
      return rows.map((r) => ({
        id: r.id,
        path: r.path,
        ordinal: r.ordinal,
        startLine: r.start_line,
        endLine: r.end_line,
        symbol: r.symbol,
        kind: r.kind,
        language: r.language,
        contentHash: r.content_hash,
        content: r.content,
        batch: r.batch,
      }));
    },

    async cachedEmbeddings(modelId: string, hashes: string[]): Promise<Map<string, number[]>> {
      if (hashes.length === 0) return new Map();
      const { rows } = await pg.pool.query<{ content_hash: string; embedding: Buffer }>(
        `SELECT content_hash, embedding FROM embedding_cache WHERE model_id = $1 AND content_hash = ANY($2)`,
        [modelId, hashes],
      );
      return new Map(rows.map((r) => [r.content_hash, decodeVector(r.embedding)]));
    },

    async cacheEmbeddings(modelId: string, entries: Array<{ hash: string; embedding: number[] }>): Promise<void> {
      // Sorted: concurrent batches sharing some texts then take row locks in the same order and never deadlock.
      const sorted = [...entries].sort((a, b) => (a.hash < b.hash ? -1 : a.hash > b.hash ? 1 : 0));
      for (let i = 0; i < sorted.length; i += INSERT_ROWS) {
        const slice = sorted.slice(i, i + INSERT_ROWS);
        await pg.pool.query(
          `INSERT INTO embedding_cache (model_id, content_hash, embedding)
           SELECT $1::text, * FROM unnest($2::text[], $3::bytea[]) ON CONFLICT DO NOTHING`,
          [modelId, slice.map((e) => e.hash), slice.map((e) => encodeVector(e.embedding))],
        );
      }
    },

    /**
     * Publishes a run: replaces the staged files' chunks, moves the branch to
     * `commit`, clears the staging rows. Returns the chunk ids that are no
     * longer live (their vectors can go).
     */
    async publish(run: { runId: string; repositoryId: number; branch: string; commit: string }): Promise<{ removedIds: string[] }> {
      // The branch's indexed commit changes: this process reads it at once, others on the notification.
      const published = pg.transaction(async (client: pg.PoolClient) => {
        const args = [run.runId, run.repositoryId, run.branch];
        // Old chunks of every touched file, minus those that survive unchanged under the same id.
        const removed = await client.query<{ id: string }>(
          `DELETE FROM chunks c USING file_staging f
            WHERE f.run_id = $1 AND c.repository_id = $2 AND c.branch = $3 AND c.path = f.path
              AND NOT EXISTS (SELECT 1 FROM chunk_staging s WHERE s.run_id = $1 AND s.id = c.id)
            RETURNING c.id`,
          args,
        );
        await client.query(
          `DELETE FROM files f USING file_staging s
            WHERE s.run_id = $1 AND s.deleted AND f.repository_id = $2 AND f.branch = $3 AND f.path = s.path`,
          args,
        );
        await client.query(
          `INSERT INTO files (repository_id, branch, path, blob_sha, language, size_bytes, chunk_count)
           SELECT $2, $3, path, blob_sha, language, size_bytes, chunk_count FROM file_staging WHERE run_id = $1 AND NOT deleted
           ON CONFLICT (repository_id, branch, path) DO UPDATE SET blob_sha = excluded.blob_sha, language = excluded.language,
             size_bytes = excluded.size_bytes, chunk_count = excluded.chunk_count`,
          args,
        );
        const inserted = await client.query(
          `INSERT INTO chunks (id, repository_id, branch, path, ordinal, start_line, end_line, symbol, kind, language, content_hash, content, search_vector)
           SELECT id, repository_id, branch, path, ordinal, start_line, end_line, symbol, kind, language, content_hash, content, search_vector
             FROM chunk_staging WHERE run_id = $1
           ON CONFLICT (id) DO UPDATE SET ordinal = excluded.ordinal, start_line = excluded.start_line, end_line = excluded.end_line,
             symbol = excluded.symbol, kind = excluded.kind, search_vector = excluded.search_vector`,
          [run.runId],
        );
        await client.query(
          `UPDATE repository_branches b SET
             indexed_commit = $3, status = 'ready', last_error = NULL, indexed_at = now(), updated_at = now(),
             file_count = (SELECT count(*) FROM files WHERE repository_id = $1 AND branch = $2),
             chunk_count = (SELECT count(*) FROM chunks WHERE repository_id = $1 AND branch = $2)
           WHERE repository_id = $1 AND branch = $2`,
          [run.repositoryId, run.branch, run.commit],
        );
        await client.query(`DELETE FROM chunk_staging WHERE run_id = $1`, [run.runId]);
        await client.query(`DELETE FROM file_staging WHERE run_id = $1`, [run.runId]);
        await client.query(`DELETE FROM graph_staging WHERE run_id = $1`, [run.runId]);
        return { removedIds: removed.rows.map((r) => r.id), changed: (inserted.rowCount ?? 0) + removed.rows.length };
      });
      const { removedIds, changed } = await published.finally(catalogCache(pg).invalidate);
      // After a large change (a first index) searches would run slow until autovacuum gets round to
      // the table: full-text plans on planner guesses are 20× slower, and every search scans the GIN
      // index's pending list of new entries. Both are settled now; failures only cost speed.
      if (changed >= SETTLE_AFTER_CHANGED_ROWS) {
        await pg.pool.query(`SELECT gin_clean_pending_list('chunks_search_idx'::regclass)`).catch(() => undefined);
        await pg.pool.query('ANALYZE files, chunks').catch(() => undefined);
      }
      return { removedIds };
    },

    /** The live chunks among `ids`, in no particular order. */
    async liveChunks(ids: string[]): Promise<LiveChunk[]> {
      if (ids.length === 0) return [];
      // Named: every search runs it, so each connection parses and plans it once.
      const { rows } = await pg.pool.query({
        name: 'live-chunks',
        text: `SELECT id, repository_id, branch, path, start_line, end_line, symbol, kind, language, content FROM chunks WHERE id = ANY($1)`,
        values: [ids],
      });
      return rows.map(toLiveChunk);
    },

    /**
     * Full-text candidates, best first, as chunk ids (the caller fetches
     * content only for what it keeps): chunks matching every term, then, when
     * fewer than `enough` do, chunks matching any. Ranking reads each
     * candidate's tsvector, so it is bounded to a sample of the matches: a
     * common word can match most of a large index, and ranking every match
     * would cost more than the search is worth.
     */
    async fullText(
      query: { all: string; any: string; words: number } | null,
      filter: { repositoryBranches?: Array<{ repositoryId: number; branch: string }>; language?: string },
      limit: number,
      options: { enough?: number } = {},
    ): Promise<string[]> {
      if (!query) return [];
      const repoIds = filter.repositoryBranches?.map((r) => r.repositoryId) ?? null;
      const branches = filter.repositoryBranches?.map((r) => r.branch) ?? null;
      // One round trip: the any-word scan runs only when the all-words one found too few (migration search_subtokens).
      const { rows } = await pg.pool.query<{ id: string }>({
        name: 'search-chunk-ids',
        text: "SELECT id FROM search_chunk_ids(to_tsquery('simple', $1), to_tsquery('simple', $2), $3, $4, $5, $6, $7, $8, $9)",
        values: [
          query.all,
          query.words > 1 ? query.any : null,
          filter.language ?? null,
          Math.min(options.enough ?? limit, limit),
          repoIds,
          branches,
          limit,
          ALL_TERMS_CANDIDATES,
          ANY_TERM_CANDIDATES,
        ],
      });
      return rows.map((r) => r.id);
    },

    /**
     * Full-text candidates of a query of several words, best first: each
     * chunk scores the weights of the words it holds (half again in its
     * symbol or path), a word weighing more the rarer it is in the index
     * (migration search_weighted). How rare comes from Postgres' own
     * statistics of the search column (the most common lexemes and their
     * share of chunks, kept by ANALYZE, read once a minute): no scan per
     * query. Candidates are the chunks holding one of the rarer words.
     */
    async fullTextWeighted(
      query: { any: string; terms: Array<{ expr: string; named: string; lexemes: string[] }> },
      filter: { repositoryBranches?: Array<{ repositoryId: number; branch: string }>; language?: string },
      limit: number,
    ): Promise<string[]> {
      const stats = await lexemeStats();
      const share = (lexemes: string[]) => Math.min(...lexemes.map((l) => stats.shares.get(l) ?? stats.rare));
      const weighted = query.terms.map((t) => ({ ...t, share: share(t.lexemes) })).map((t) => ({ ...t, weight: Math.log(1 + 1 / t.share) }));
      const byRarity = [...weighted].sort((a, b) => a.share - b.share);
      const seeds = byRarity.filter((t, i) => t.share <= SEED_MAX_SHARE || i < 2);
      const repoIds = filter.repositoryBranches?.map((r) => r.repositoryId) ?? null;
      const branches = filter.repositoryBranches?.map((r) => r.branch) ?? null;
      const { rows } = await pg.pool.query<{ id: string }>({
        name: 'search-chunks-weighted',
        text: "SELECT id FROM search_chunks_weighted(to_tsquery('simple', $1), $2, $3, $4, $5, $6, $7, $8, $9)",
        values: [
          seeds.map((t) => t.expr).join(' | '),
          weighted.map((t) => t.expr),
          weighted.map((t) => t.named),
          weighted.map((t) => t.weight),
          filter.language ?? null,
          repoIds,
          branches,
          limit,
          WEIGHTED_CANDIDATES,
        ],
      });
      return rows.map((r) => r.id);
    },

    async liveChunkIds(repositoryId: number): Promise<string[]> {
      const { rows } = await pg.pool.query<{ id: string }>(`SELECT id FROM chunks WHERE repository_id = $1`, [repositoryId]);
      return rows.map((r) => r.id);
    },
  };
}

export type ChunkRepository = ReturnType<typeof createChunkRepository>;

/** Float32 little-endian: 4 bytes a dimension, exact for what embedding models return. */
export function encodeVector(v: number[]): Buffer {
  const buf = Buffer.alloc(v.length * 4);
  for (let i = 0; i < v.length; i++) buf.writeFloatLE(v[i]!, i * 4);
  return buf;
}

export function decodeVector(buf: Buffer): number[] {
  const out = new Array<number>(buf.length / 4);
  for (let i = 0; i < out.length; i++) out[i] = buf.readFloatLE(i * 4);
  return out;
}
