import type { PostgresConnection } from './postgres.connection.ts';
import { decodeVector } from './chunk.repository.ts';
import type { RepositoryBranchRef } from './vector.store.ts';

export interface ModelVectorRecord {
  chunkId: string;
  textHash: string;
  status: 'ok' | 'failed';
  error?: string;
}

export interface SemanticCoverage {
  /** Live chunks with a model vector. */
  embedded: number;
  /** Live chunks the model failed on (recorded and skipped). */
  failed: number;
  /** Live chunks of the branch. */
  total: number;
}

const INSERT_ROWS = 1000;

export const coverageKey = (ref: RepositoryBranchRef) => `${ref.repositoryId}\0${ref.branch}`;

/**
 * Bookkeeping of the background model tier (migration `model_vectors`):
 * which live chunks have a vector from the local model, and which the model
 * failed on. Rows go with their chunks (ON DELETE CASCADE), so a publish that
 * replaces a file leaves its new chunks pending and nothing stale behind.
 */
export function createModelVectorRepository(pg: PostgresConnection) {
  return {
    /** Live chunks of a branch with no row for the model yet: id and path (content is read a page at a time). */
    async pending(modelId: string, ref: RepositoryBranchRef): Promise<Array<{ id: string; path: string }>> {
      const { rows } = await pg.pool.query<{ id: string; path: string }>(
        `SELECT c.id, c.path FROM chunks c
          WHERE c.repository_id = $2 AND c.branch = $3
            AND NOT EXISTS (SELECT 1 FROM chunk_model_vectors v WHERE v.model_id = $1 AND v.chunk_id = c.id)
          ORDER BY c.path, c.ordinal`,
        [modelId, ref.repositoryId, ref.branch],
      );
      return rows;
    },

    /** Records vectors written (or chunks failed); rows of chunks a publish removed meanwhile are skipped, not errors. */
    async record(modelId: string, records: ModelVectorRecord[]): Promise<void> {
      const sorted = [...records].sort((a, b) => (a.chunkId < b.chunkId ? -1 : a.chunkId > b.chunkId ? 1 : 0));
      for (let i = 0; i < sorted.length; i += INSERT_ROWS) {
        const slice = sorted.slice(i, i + INSERT_ROWS);
        await pg.pool.query(
          `INSERT INTO chunk_model_vectors (model_id, chunk_id, text_hash, status, error)
           SELECT $1::text, u.chunk_id, u.text_hash, u.status, u.error
             FROM unnest($2::text[], $3::text[], $4::text[], $5::text[]) AS u(chunk_id, text_hash, status, error)
            WHERE EXISTS (SELECT 1 FROM chunks c WHERE c.id = u.chunk_id)
           ON CONFLICT (model_id, chunk_id) DO UPDATE SET text_hash = excluded.text_hash, status = excluded.status, error = excluded.error`,
          [
            modelId,
            slice.map((r) => r.chunkId),
            slice.map((r) => r.textHash),
            slice.map((r) => r.status),
            slice.map((r) => (r.error ? r.error.replaceAll('\0', '').slice(0, 500) : null)),
          ],
        );
      }
    },

    /** Coverage of each branch, keyed by `coverageKey`; branches with no chunks are absent. */
    async coverage(modelId: string, refs: RepositoryBranchRef[]): Promise<Map<string, SemanticCoverage>> {
      const out = new Map<string, SemanticCoverage>();
      if (refs.length === 0) return out;
      const { rows } = await pg.pool.query<{ repository_id: string; branch: string; total: string; embedded: string; failed: string }>(
        `SELECT c.repository_id, c.branch, count(*) AS total,
                count(*) FILTER (WHERE v.status = 'ok') AS embedded, count(*) FILTER (WHERE v.status = 'failed') AS failed
           FROM chunks c LEFT JOIN chunk_model_vectors v ON v.chunk_id = c.id AND v.model_id = $1
          WHERE (c.repository_id, c.branch) IN (SELECT * FROM unnest($2::bigint[], $3::text[]))
          GROUP BY c.repository_id, c.branch`,
        [modelId, refs.map((r) => r.repositoryId), refs.map((r) => r.branch)],
      );
      for (const r of rows) {
        out.set(coverageKey({ repositoryId: Number(r.repository_id), branch: r.branch }), {
          total: Number(r.total),
          embedded: Number(r.embedded),
          failed: Number(r.failed),
        });
      }
      return out;
    },

    /** chunk id → its model vector (from the embedding cache), for the chunks among `chunkIds` that have one. */
    async vectorsOf(modelId: string, chunkIds: string[]): Promise<Map<string, number[]>> {
      if (chunkIds.length === 0) return new Map();
      const { rows } = await pg.pool.query<{ chunk_id: string; embedding: Buffer }>({
        name: 'model-vectors-of',
        text: `SELECT v.chunk_id, e.embedding FROM chunk_model_vectors v
                 JOIN embedding_cache e ON e.model_id = v.model_id AND e.content_hash = v.text_hash
                WHERE v.model_id = $1 AND v.chunk_id = ANY($2) AND v.status = 'ok'`,
        values: [modelId, chunkIds],
      });
      return new Map(rows.map((r) => [r.chunk_id, decodeVector(r.embedding)]));
    },
  };
}

export type ModelVectorRepository = ReturnType<typeof createModelVectorRepository>;
