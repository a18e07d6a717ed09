import type { Job } from 'bullmq';
import type { Platform } from '../platform.ts';
import { QUEUE_NAMES, type QueueName } from './registry.ts';

export const JOB_STATES = ['active', 'waiting', 'waiting-children', 'delayed', 'prioritized', 'failed', 'completed'] as const;
export type JobState = (typeof JOB_STATES)[number];

export interface JobView {
  id: string;
  queue: QueueName;
  name: string;
  state: string;
  progress: unknown;
  /** For runs waiting on their batches: how many are done out of how many. */
  batches?: { done: number; total: number };
  attempts: number;
  failedReason?: string;
  result?: unknown;
  repositoryId?: number;
  createdAt: string;
  finishedAt?: string;
}

/** Job state for the API, the CLI and MCP: one view whatever queue a job sits in. */
export function createJobStatusService(platform: Platform) {
  async function view(queue: QueueName, job: Job): Promise<JobView> {
    const state = await job.getState();
    const data = (job.data ?? {}) as { repositoryId?: number };
    const out: JobView = {
      id: job.id!,
      queue,
      name: job.name,
      state,
      progress: job.progress,
      attempts: job.attemptsMade,
      createdAt: new Date(job.timestamp).toISOString(),
      ...(typeof data.repositoryId === 'number' ? { repositoryId: data.repositoryId } : {}),
      ...(job.failedReason ? { failedReason: job.failedReason } : {}),
      ...(job.returnvalue !== undefined && job.returnvalue !== null ? { result: job.returnvalue } : {}),
      ...(job.finishedOn ? { finishedAt: new Date(job.finishedOn).toISOString() } : {}),
    };
    if (state === 'waiting-children') {
      const c = await job.getDependenciesCount({ processed: true, unprocessed: true, ignored: true, failed: true });
      const done = (c.processed ?? 0) + (c.ignored ?? 0) + (c.failed ?? 0);
      out.batches = { done, total: done + (c.unprocessed ?? 0) };
    }
    return out;
  }

  return {
    async get(id: string): Promise<JobView | null> {
      for (const queue of QUEUE_NAMES) {
        const job = await platform.queues.queues[queue].getJob(id);
        if (job) return view(queue, job);
      }
      return null;
    },
    async list(options: { queues?: QueueName[]; states?: JobState[]; limit?: number } = {}): Promise<JobView[]> {
      const limit = options.limit ?? 20;
      const out: JobView[] = [];
      for (const queue of options.queues ?? QUEUE_NAMES) {
        const jobs = await platform.queues.queues[queue].getJobs([...(options.states ?? JOB_STATES)], 0, limit - 1, false);
        for (const job of jobs) if (job) out.push(await view(queue, job));
      }
      return out.sort((a, b) => b.createdAt.localeCompare(a.createdAt));
    },
  };
}

export type JobStatusService = ReturnType<typeof createJobStatusService>;
