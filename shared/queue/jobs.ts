import { z } from 'zod';
import { defineJob, type JobSpec } from './registry.ts';

const branchName = z
  .string()
  .min(1)
  .max(255)
  .regex(/^(?!.*\.\.)(?!\/)(?!.*\/$)[^\s~^:?*[\\\x00-\x1f]+$/, 'is not a valid Git branch name')
  .describe('Git branch');

/**
 * Every job the platform runs: name → queue, payload schema, options, dedup
 * key. The worker's handler map is typed against this object, so a job without
 * a handler does not compile.
 */
export const JOBS = {
  'index-repository': defineJob({
    queue: 'index',
    schema: z.object({
      repositoryId: z.number().int().positive(),
      branch: branchName,
      full: z.boolean().default(false),
      /** Set by the job itself between its two steps; never by producers. */
      step: z.enum(['prepare', 'publish']).optional(),
      commit: z.string().optional(),
      /** Files whose calls the publish step re-resolves; kept for its retries. */
      graphScope: z.array(z.string()).optional(),
      /**
       * Set by the job itself, once: the branch has fewer vectors in the current embedding space than live
       * chunks (the model changed, or Chroma lost data), so every file is staged and embedded again.
       */
      restageAll: z.boolean().optional(),
    }),
    options: {
      attempts: 3,
      backoff: { type: 'exponential', delay: 5000 },
      removeOnComplete: { age: 7 * 24 * 3600, count: 1000 },
      removeOnFail: { age: 30 * 24 * 3600 },
    },
    dedupKey: (d) => `index:${d.repositoryId}:${d.branch}`,
  }),
  'embed-batch': defineJob({
    queue: 'embed',
    schema: z.object({
      runId: z.string().min(1),
      repositoryId: z.number().int().positive(),
      branch: branchName,
      commit: z.string().min(7),
      batch: z.number().int().min(0),
    }),
    options: {
      attempts: 5,
      backoff: { type: 'exponential', delay: 2000 },
      removeOnComplete: { age: 24 * 3600, count: 5000 },
      removeOnFail: { age: 7 * 24 * 3600 },
    },
  }),
  'graph-batch': defineJob({
    queue: 'graph',
    schema: z.object({
      runId: z.string().min(1),
      repositoryId: z.number().int().positive(),
      branch: branchName,
      batch: z.number().int().min(0),
    }),
    options: {
      attempts: 5,
      backoff: { type: 'exponential', delay: 2000 },
      removeOnComplete: { age: 24 * 3600, count: 5000 },
      removeOnFail: { age: 7 * 24 * 3600 },
    },
  }),
  /**
   * Fills in a branch's model vectors after a run published it (the local model is ~1,000× slower than the
   * run's fast vectors): resumable (what is done is recorded per chunk), one branch at a time, the branch
   * published last first (LIFO), and a branch with much to do yields after a slice so others get a turn.
   */
  'semantic-embed': defineJob({
    queue: 'semantic',
    schema: z.object({
      repositoryId: z.number().int().positive(),
      branch: branchName,
    }),
    options: {
      attempts: 5,
      backoff: { type: 'exponential', delay: 10_000 },
      lifo: true,
      removeOnComplete: { age: 24 * 3600, count: 1000 },
      removeOnFail: { age: 7 * 24 * 3600 },
    },
    dedupKey: (d) => `semantic:${d.repositoryId}:${d.branch}`,
  }),
  /**
   * Maintenance (queue `maintenance`, one at a time per worker): backups, their verification and pruning,
   * secret rotation and the poll of repositories without a webhook. Each can be queued on demand (CLI, admin
   * API) or by a job scheduler the workers upsert from config at start; `actor` says which, for the audit trail.
   */
  'backup-create': defineJob({
    queue: 'maintenance',
    schema: z.object({
      /** One instance, or every instance when left out. */
      instance: z.string().regex(/^[a-z][a-z0-9_-]{0,31}$/).optional(),
      actor: z.string().min(1).max(200).default('schedule:backup'),
    }),
    options: { attempts: 2, backoff: { type: 'exponential', delay: 30_000 }, removeOnComplete: { age: 30 * 24 * 3600, count: 500 }, removeOnFail: { age: 30 * 24 * 3600 } },
    dedupKey: (d) => `backup:${d.instance ?? '*'}`,
  }),
  'backup-verify': defineJob({
    queue: 'maintenance',
    schema: z.object({
      /** A file name in BACKUP_DIR; the newest set when left out. */
      file: z.string().regex(/^[A-Za-z0-9._-]+\.tar\.gz$/).optional(),
      actor: z.string().min(1).max(200).default('schedule:backup-verify'),
    }),
    options: { attempts: 1, removeOnComplete: { age: 30 * 24 * 3600, count: 500 }, removeOnFail: { age: 30 * 24 * 3600 } },
    dedupKey: (d) => `backup-verify:${d.file ?? 'newest'}`,
  }),
  'backup-restore': defineJob({
    queue: 'maintenance',
    schema: z.object({
      file: z.string().regex(/^[A-Za-z0-9._-]+\.tar\.gz$/),
      /** Restore this instance only (from a set of every instance); the set's own scope when left out. */
      instance: z.string().regex(/^[a-z][a-z0-9_-]{0,31}$/).optional(),
      /** Replace what is there (the CLI's --yes); without it a restore over existing data is refused. */
      replace: z.boolean().default(false),
      actor: z.string().min(1).max(200),
    }),
    options: { attempts: 1, removeOnComplete: { age: 30 * 24 * 3600, count: 500 }, removeOnFail: { age: 30 * 24 * 3600 } },
  }),
  'backup-prune': defineJob({
    queue: 'maintenance',
    schema: z.object({ actor: z.string().min(1).max(200).default('schedule:backup-prune') }),
    options: { attempts: 2, removeOnComplete: { age: 30 * 24 * 3600, count: 500 }, removeOnFail: { age: 30 * 24 * 3600 } },
    dedupKey: () => 'backup-prune',
  }),
  'secret-rotate': defineJob({
    queue: 'maintenance',
    schema: z.object({
      /** A secret's name, or 'all' for every secret the platform manages. */
      name: z.string().min(1).max(100).default('all'),
      actor: z.string().min(1).max(200).default('schedule:secret-rotate'),
    }),
    options: { attempts: 1, removeOnComplete: { age: 30 * 24 * 3600, count: 500 }, removeOnFail: { age: 30 * 24 * 3600 } },
    dedupKey: (d) => `secret-rotate:${d.name}`,
  }),
  'repository-poll': defineJob({
    queue: 'maintenance',
    schema: z.object({ actor: z.string().min(1).max(200).default('schedule:repository-poll') }),
    options: { attempts: 1, removeOnComplete: { age: 24 * 3600, count: 200 }, removeOnFail: { age: 7 * 24 * 3600 } },
    dedupKey: () => 'repository-poll',
  }),
} satisfies Record<string, JobSpec>;

export type JobName = keyof typeof JOBS;
