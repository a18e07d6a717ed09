import type { Job } from 'bullmq';
import { UnrecoverableError } from 'bullmq';
import type { WorkerDeps } from '../handlers.ts';

/** Rotates one managed secret (or all of them). Being built: see issue 16. */
export function createSecretRotateHandler(_deps: WorkerDeps) {
  return async function secretRotate(job: Job): Promise<unknown> {
    throw new UnrecoverableError(`secret rotation is not available in this build (job ${job.id})`);
  };
}
