import { UnrecoverableError, type Job } from 'bullmq';
import { EmbeddingError } from '../../shared/embeddings/embedding-provider.ts';
import { errorMessage } from '../../shared/errors.ts';
import type { SemanticTier } from '../../shared/platform.ts';
import { JOBS } from '../../shared/queue/jobs.ts';
import type { JobData, QueueRegistry } from '../../shared/queue/queues.ts';
import { FILE_KINDS, fileKind } from '../../shared/search/file-kind.ts';
import { semanticText, semanticTextHash } from '../../shared/semantic/semantic-text.ts';
import type { ModelVectorRecord } from '../../shared/stores/model-vector.repository.ts';
import type { WorkerDeps } from '../handlers.ts';
import { vectorMetadata } from './embed-batch.job.ts';

type SemanticData = JobData<'semantic-embed'>;

export interface SemanticProgress {
  phase: 'embedding' | 'done';
  model: string;
  /** Live chunks of the branch with a model vector (or failed and skipped), of `total`. */
  embedded: number;
  failed: number;
  total: number;
}

/** Chunks read, embedded and written together: small enough that progress moves every few seconds. */
const PAGE = 32;
/**
 * Time one job spends on a branch before it hands over to the next waiting branch (the one published last
 * goes first) and queues itself again: a 12,000-chunk branch takes the model ~15 minutes on two cores.
 */
const SLICE_MS = 120_000;

/** Implementation code first: what plain-English questions are after. Then the rest in `FILE_KINDS` order. */
const KIND_ORDER = new Map(FILE_KINDS.map((k, i) => [k, i]));

/**
 * Fills in the model vectors of one branch's live chunks: each chunk's text
 * under its path-and-symbol header (semantic-text.ts) is looked up in the
 * embedding cache by its hash, only new texts go to the model, and the
 * vectors go to the model's own Chroma collection. What is done is recorded
 * per chunk, so the job resumes where it stopped after a crash, a retry or a
 * new publish. A text the model fails on is tried alone once more, then
 * recorded as failed and skipped.
 */
export function createSemanticEmbedHandler(deps: WorkerDeps & { semantic: SemanticTier; enqueue: QueueRegistry['enqueue'] }) {
  const { semantic, chunks, repositories, logger } = deps;
  const { embeddings: model, vectors, modelVectors } = semantic;

  async function embedPage(texts: string[]): Promise<Array<number[] | Error>> {
    try {
      return await model.embed(texts, { purpose: 'document' });
    } catch (err) {
      if (err instanceof EmbeddingError && err.kind === 'config') throw new UnrecoverableError(err.message);
      // One bad text must not sink its page: each alone, once more.
      const out: Array<number[] | Error> = [];
      for (const t of texts) out.push(await model.embed([t], { purpose: 'document' }).then(([v]) => v!, (e: unknown) => (e instanceof Error ? e : new Error(String(e)))));
      return out;
    }
  }

  return async function semanticEmbed(job: Job<SemanticData>) {
    const data = JOBS['semantic-embed'].schema.parse(job.data);
    const ref = { repositoryId: data.repositoryId, branch: data.branch };
    const branch = await repositories.getBranch(data.repositoryId, data.branch);
    if (!branch?.indexedCommit) return { skipped: 'the branch has no published index' };
    try {
      await model.load();
    } catch (err) {
      throw err instanceof EmbeddingError && err.kind === 'config' ? new UnrecoverableError(err.message) : err;
    }

    const pending = await modelVectors.pending(model.id, ref);
    const order = (p: string) => KIND_ORDER.get(fileKind(p)) ?? FILE_KINDS.length;
    pending.sort((a, b) => order(a.path) - order(b.path));
    const before = (await modelVectors.coverage(model.id, [ref])).values().next().value ?? { embedded: 0, failed: 0, total: 0 };
    const progress: SemanticProgress = { phase: 'embedding', model: model.id, embedded: before.embedded, failed: before.failed, total: before.total };
    await job.updateProgress({ ...progress });

    const started = Date.now();
    let embeddedNow = 0;
    for (let from = 0; from < pending.length; from += PAGE) {
      // At least one page a job, however short the slice: a job that only handed over would never finish.
      if (from > 0 && Date.now() - started > (deps.config.semantic?.sliceMs ?? SLICE_MS)) {
        // Queued while this job is active, the next one waits (deduplicated) and starts after the branches
        // published since: resumption is free, the rows say what is done.
        await deps.enqueue('semantic-embed', data);
        logger.info({ jobId: job.id, ...ref, embedded: embeddedNow, remaining: pending.length - from }, 'semantic embedding yields to other branches');
        return { ...progress, yielded: true, embeddedNow };
      }
      // Chunks a publish replaced meanwhile are simply not live any more.
      const rows = await chunks.liveChunks(pending.slice(from, from + PAGE).map((p) => p.id));
      if (rows.length === 0) continue;
      const texts = rows.map((r) => semanticText(r));
      const hashes = texts.map(semanticTextHash);
      const cached = await chunks.cachedEmbeddings(model.id, [...new Set(hashes)]);
      const missing = [...new Set(hashes.filter((h) => !cached.has(h)))];
      const failures = new Map<string, string>();
      if (missing.length > 0) {
        const textOf = new Map(hashes.map((h, i) => [h, texts[i]!]));
        const out = await embedPage(missing.map((h) => textOf.get(h)!));
        const fresh: Array<{ hash: string; embedding: number[] }> = [];
        out.forEach((v, i) => (v instanceof Error ? failures.set(missing[i]!, errorMessage(v)) : fresh.push({ hash: missing[i]!, embedding: v })));
        await chunks.cacheEmbeddings(model.id, fresh);
        for (const f of fresh) cached.set(f.hash, f.embedding);
      }
      const ok = rows.flatMap((r, i) => (cached.has(hashes[i]!) ? [{ r, hash: hashes[i]! }] : []));
      await vectors.upsert(ok.map(({ r, hash }) => ({ id: r.id, embedding: cached.get(hash)!, metadata: vectorMetadata({ ...ref, commit: branch.indexedCommit! }, r) })));
      const records: ModelVectorRecord[] = rows.map((r, i) => {
        const error = failures.get(hashes[i]!);
        return error ? { chunkId: r.id, textHash: hashes[i]!, status: 'failed', error } : { chunkId: r.id, textHash: hashes[i]!, status: 'ok' };
      });
      await modelVectors.record(model.id, records);
      if (failures.size > 0) logger.warn({ jobId: job.id, ...ref, failed: failures.size, err: [...failures.values()][0] }, 'the model failed on some chunks; they are skipped');
      embeddedNow += ok.length;
      progress.embedded += ok.length;
      progress.failed += records.length - ok.length;
      await job.updateProgress({ ...progress });
    }
    const after = (await modelVectors.coverage(model.id, [ref])).values().next().value ?? { embedded: 0, failed: 0, total: 0 };
    const done: SemanticProgress = { phase: 'done', model: model.id, embedded: after.embedded, failed: after.failed, total: after.total };
    await job.updateProgress({ ...done });
    logger.info({ jobId: job.id, ...ref, embeddedNow, coverage: `${after.embedded}/${after.total}`, ms: Date.now() - started }, 'semantic embedding done');
    return { ...done, embeddedNow };
  };
}
