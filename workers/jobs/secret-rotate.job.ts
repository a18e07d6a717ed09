import type { Job } from 'bullmq';
import { UnrecoverableError } from 'bullmq';
import { AppError } from '../../shared/errors.ts';
import { JOBS } from '../../shared/queue/jobs.ts';
import { createSecretRotationService, type RotationResult } from '../../shared/secrets/secret-rotation.service.ts';
import type { WorkerDeps } from '../handlers.ts';

/**
 * Rotates one managed secret, or all of them (shared/secrets/secret-rotation.service.ts). Each secret's
 * outcome is an audit row. The job fails when any secret failed (each rolled back); skipped secrets (not
 * managed, not due) are listed in its return value. A worker that dies mid-rotation leaves the journal
 * beside the secret's file: the job is re-run (stalled) and the rotation finishes or is undone first.
 */
export function createSecretRotateHandler(deps: WorkerDeps) {
  return async function secretRotate(job: Job): Promise<RotationResult> {
    const { name, actor } = JOBS['secret-rotate'].schema.parse(job.data);
    const service = createSecretRotationService({
      platform: deps.platform,
      logger: deps.logger.child({ queue: job.queueName, jobId: job.id }),
      onStep: async (secret, step) => {
        await job.updateProgress({ secret, step });
        await job.log(`${secret}: ${step}`).catch(() => undefined);
      },
    });
    let result: RotationResult;
    try {
      result = await service.rotate(name, actor);
    } catch (err) {
      // An unknown or unmanaged name: no retry will change that.
      if (err instanceof AppError && err.statusCode < 500) throw new UnrecoverableError(err.message);
      throw err;
    }
    if (result.failed.length > 0) {
      const why = result.failed.map((f) => `${f.name}: ${f.error} (${f.rolledBack ? 'rolled back: the old value still works' : 'NOT rolled back'})`).join('; ');
      const done = result.rotated.length > 0 ? `; rotated: ${result.rotated.map((r) => r.name).join(', ')}` : '';
      throw new UnrecoverableError(`secret rotation failed for ${why}${done}`);
    }
    return result;
  };
}
