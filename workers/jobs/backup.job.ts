import type { Job } from 'bullmq';
import { UnrecoverableError } from 'bullmq';
import type { WorkerDeps } from '../handlers.ts';

export function createBackupHandlers(_deps: WorkerDeps) {
  const notYet = async (job: Job): Promise<unknown> => {
    throw new UnrecoverableError(`${job.name} is not available in this build`);
  };
  return { 'backup-create': notYet, 'backup-verify': notYet, 'backup-prune': notYet, 'repository-poll': notYet };
}
