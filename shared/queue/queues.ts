import { randomUUID } from 'node:crypto';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { UnrecoverableError } from 'bullmq';
import type { z } from 'zod';
import { withTimeout } from '../errors.ts';
import { JOBS, type JobName } from './jobs.ts';
import { QUEUE_NAMES, type JobSpec, type QueueName } from './registry.ts';

export type JobData<N extends JobName> = (typeof JOBS)[N] extends JobSpec<infer S> ? z.infer<S> : never;

export interface QueueRegistry {
  queues: Record<QueueName, Queue>;
  enqueue<N extends JobName>(name: N, data: JobData<N>): Promise<{ id: string; queue: QueueName }>;
  close(): Promise<void>;
}

/** One Queue per queue name, sharing a producer connection. Nobody else builds `new Queue()`. */
export function createQueues(connection: Redis, prefix: string): QueueRegistry {
  const queues = Object.fromEntries(
    QUEUE_NAMES.map((name) => [name, new Queue(name, { connection, prefix })]),
  ) as Record<QueueName, Queue>;
  for (const q of Object.values(queues)) q.on('error', () => undefined);

  return {
    queues,
    async enqueue(name, data) {
      const spec = (JOBS as Record<string, JobSpec>)[name];
      if (!spec) throw new UnrecoverableError(`unknown job ${String(name)}`);
      const payload = spec.schema.parse(data);
      const dedupId = spec.dedupKey?.(payload);
      const job = await queues[spec.queue].add(String(name), payload, {
        ...spec.options,
        // Maintenance jobs are looked up by id across queues (job status): ids of their own, not the queue's counter.
        ...(spec.queue === 'maintenance' ? { jobId: `${String(name)}-${randomUUID()}` } : {}),
        ...(dedupId ? { deduplication: { id: dedupId, keepLastIfActive: true } } : {}),
      });
      return { id: job.id!, queue: spec.queue };
    },
    async close() {
      // Queue.close waits on Redis; with Redis down it would wait forever, so it gets a few seconds.
      await Promise.allSettled(Object.values(queues).map((q) => withTimeout(q.close(), 3000, `queue ${q.name}`).catch(() => void q.disconnect().catch(() => undefined))));
    },
  };
}
