import { UnrecoverableError, type Job } from 'bullmq';
import { EmbeddingError } from '../../shared/embeddings/embedding-provider.ts';
import { JOBS } from '../../shared/queue/jobs.ts';
import { addWorkerCounters } from '../../shared/queue/worker-metrics.ts';
import type { JobData } from '../../shared/queue/queues.ts';
import type { VectorRecord } from '../../shared/stores/vector.store.ts';
import type { WorkerDeps } from '../handlers.ts';

/** The metadata stored with a chunk's vector in Chroma. */
export function vectorMetadata(
  run: { repositoryId: number; branch: string; commit: string },
  c: { path: string; language: string | null; startLine: number; endLine: number; symbol: string | null; kind: string },
): VectorRecord['metadata'] {
  return {
    repository_id: run.repositoryId,
    branch: run.branch,
    path: c.path,
    language: c.language ?? '',
    start_line: c.startLine,
    end_line: c.endLine,
    symbol: c.symbol ?? '',
    kind: c.kind,
    commit: run.commit,
  };
}

/**
 * Embeds one staged batch: texts already in the embedding cache (same content,
 * same model, any file, branch or repository) are reused, only the rest go to
 * the provider; then every vector of the batch is upserted into Chroma.
 * Idempotent, so a retry or a second run after a crash writes the same records.
 */
export function createEmbedBatchHandler(deps: WorkerDeps) {
  const { chunks, embeddings, vectors } = deps;
  return async function embedBatch(job: Job<JobData<'embed-batch'>>) {
    const data = JOBS['embed-batch'].schema.parse(job.data);
    const staged = await chunks.stagedBatch(data.runId, data.batch);
    if (staged.length === 0) return { embedded: 0, cached: 0, chunks: 0 };

    const hashes = [...new Set(staged.map((c) => c.contentHash))];
    const cached = await chunks.cachedEmbeddings(embeddings.id, hashes);
    const missing = hashes.filter((h) => !cached.has(h));
    if (missing.length > 0) {
      const textOf = new Map(staged.map((c) => [c.contentHash, c.content]));
      let vectorsOut: number[][];
      const before = embeddings.stats();
      try {
        vectorsOut = await embeddings.embed(missing.map((h) => textOf.get(h)!));
      } catch (err) {
        if (err instanceof EmbeddingError && !err.retryable) throw new UnrecoverableError(err.message);
        throw err;
      } finally {
        const after = embeddings.stats();
        await addWorkerCounters(deps.stores.redis.client, deps.config.queuePrefix, {
          calls: after.calls - before.calls,
          inputs: after.inputs - before.inputs,
          tokens: after.tokens - before.tokens,
          retries: after.retries - before.retries,
        }).catch(() => undefined);
      }
      const fresh = missing.map((hash, i) => ({ hash, embedding: vectorsOut[i]! }));
      await chunks.cacheEmbeddings(embeddings.id, fresh);
      for (const f of fresh) cached.set(f.hash, f.embedding);
    }

    await vectors.upsert(
      staged.map((c) => ({
        id: c.id,
        embedding: cached.get(c.contentHash)!,
        metadata: vectorMetadata(data, c),
      })),
    );
    return { embedded: missing.length, cached: hashes.length - missing.length, chunks: staged.length };
  };
}
