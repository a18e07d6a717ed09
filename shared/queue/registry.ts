import type { JobsOptions } from 'bullmq';
import type { z } from 'zod';

/**
 * The queues worker pools listen on. A job's queue decides which pool runs it,
 * so slow embedding batches never hold up graph writes or maintenance, and the
 * local model's background work (`semantic`, one at a time) never holds up an
 * index run.
 */
export const QUEUE_NAMES = ['index', 'embed', 'graph', 'semantic', 'maintenance'] as const;
export type QueueName = (typeof QUEUE_NAMES)[number];

export interface JobSpec<S extends z.ZodType = z.ZodType> {
  queue: QueueName;
  /** Validates the payload where it is enqueued and again where it is processed. */
  schema: S;
  options?: JobsOptions;
  /**
   * Deterministic deduplication id: while a job with this id is waiting,
   * equal requests coalesce into it; while one is running, at most one more
   * waits (BullMQ's `keepLastIfActive`), so a storm of requests becomes at
   * most one running and one waiting run.
   */
  dedupKey?: (data: z.infer<S>) => string;
}

export function defineJob<S extends z.ZodType>(spec: JobSpec<S>): JobSpec<S> {
  return spec;
}
