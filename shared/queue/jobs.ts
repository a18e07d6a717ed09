import type { JobSpec } from './registry.ts';

/**
 * Every job the platform runs: name → queue, payload schema, options, dedup
 * key. The worker's handler map is typed against this object, so a job without
 * a handler does not compile.
 */
export const JOBS = {} satisfies Record<string, JobSpec>;

export type JobName = keyof typeof JOBS;
