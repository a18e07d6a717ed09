import { UnrecoverableError, Worker, type Job } from 'bullmq';
import type { Chunker } from '../shared/indexing/chunker.ts';
import type { GraphExtractor } from '../shared/indexing/index-run.ts';
import type { Logger } from '../shared/logger.ts';
import type { Platform } from '../shared/platform.ts';
import { JOBS } from '../shared/queue/jobs.ts';
import { QUEUE_NAMES, type JobSpec, type QueueName } from '../shared/queue/registry.ts';
import { createHandlers } from './handlers.ts';

/** Concurrency per pool: embedding waits on I/O (HTTP, Chroma), indexing is CPU-bound chunking. */
function concurrencyFor(queue: QueueName, base: number): number {
  if (queue === 'index') return Math.max(1, Math.ceil(base / 2));
  // The model already spreads one pass over its threads: a second job would only take turns with the first.
  if (queue === 'semantic') return 1;
  // Backups, restores and rotations each touch every store: one at a time per worker.
  if (queue === 'maintenance') return 1;
  return base;
}

/**
 * Starts one BullMQ worker per queue. Used by the worker process and by
 * tests, which run the real workers in-process against the real stores.
 */
export function startWorkers(
  deps: Platform & { logger: Logger; chunker: Chunker; graphExtractor: GraphExtractor; queuesToRun?: readonly QueueName[] },
) {
  const { logger, config } = deps;
  const handlers = createHandlers({
    stores: deps.stores,
    logger,
    config,
    repositories: deps.repositories,
    chunks: deps.chunks,
    vectors: deps.vectors,
    embeddings: deps.embeddings,
    chunker: deps.chunker,
    graph: deps.graph,
    graphExtractor: deps.graphExtractor,
    semantic: deps.semantic,
    enqueue: deps.queues.enqueue,
    audit: deps.audit,
    platform: deps,
    queues: deps.queues.queues,
  });
  const queues = deps.queuesToRun ?? QUEUE_NAMES;
  const workers = queues.map((queue) => {
    const worker = new Worker(
      queue,
      async (job: Job, token?: string) => {
        const spec = (JOBS as Record<string, JobSpec>)[job.name];
        const handler = (handlers as Record<string, (job: Job, token?: string) => Promise<unknown>>)[job.name];
        if (!spec || !handler || spec.queue !== queue) {
          throw new UnrecoverableError(`no handler for job "${job.name}" on queue "${queue}"`);
        }
        const parsed = spec.schema.safeParse(job.data);
        if (!parsed.success) throw new UnrecoverableError(`invalid payload for ${job.name}: ${parsed.error.message}`);
        return handler(job, token);
      },
      {
        // Workers block on Redis: each needs its own connection.
        connection: deps.stores.redis.duplicate({ maxRetriesPerRequest: null }),
        prefix: config.queuePrefix,
        concurrency: concurrencyFor(queue, config.workerConcurrency),
        // A killed worker stops renewing its locks; after lockDuration its jobs count as stalled and are run again.
        lockDuration: config.workerLockDurationMs,
        stalledInterval: Math.max(1000, Math.floor(config.workerLockDurationMs / 2)),
        maxStalledCount: 2,
      },
    );
    worker.on('error', (err) => logger.warn({ queue, err: err.message }, 'worker error'));
    worker.on('failed', (job, err) =>
      logger.warn({ queue, jobId: job?.id, name: job?.name, attempt: job?.attemptsMade, err: err.message }, 'job failed'),
    );
    return worker;
  });
  logger.info({ queues, concurrency: config.workerConcurrency, prefix: config.queuePrefix }, 'workers ready');
  return {
    workers,
    close: async () => {
      await Promise.all(workers.map((w) => w.close()));
    },
  };
}
