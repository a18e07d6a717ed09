import type { Job } from 'bullmq';
import { UnrecoverableError } from 'bullmq';
import { createBackupService } from '../../shared/backup/backup.service.ts';
import { AppError } from '../../shared/errors.ts';
import { JOBS } from '../../shared/queue/jobs.ts';
import type { JobData } from '../../shared/queue/queues.ts';
import type { WorkerDeps } from '../handlers.ts';

/**
 * The backup jobs of the maintenance queue: create a set, verify one (the newest when none is named), prune
 * by the retention policy; and the poll of repositories no webhook keeps up to date. Each is an audit row.
 * Bad input (an unknown instance, a damaged set) fails at once, never retried.
 */
export function createBackupHandlers(deps: WorkerDeps) {
  const backups = createBackupService(deps.platform, deps.logger);
  const final = (err: unknown) => (err instanceof AppError && err.statusCode < 500 ? new UnrecoverableError(err.message) : err);
  const progressOf = (job: Job) => (p: object) => job.updateProgress({ ...p }).catch(() => undefined);

  return {
    async 'backup-create'(job: Job<JobData<'backup-create'>>) {
      const data = JOBS['backup-create'].schema.parse(job.data);
      try {
        const made = await deps.audit.timed(
          { actor: data.actor, action: 'backup.create', target: data.instance ?? 'all', details: { jobId: job.id } },
          () => backups.create({ ...(data.instance ? { instance: data.instance } : {}), actor: data.actor, onProgress: progressOf(job) }),
          (r) => ({ file: r.file, parts: r.manifest.parts.length, counts: Object.fromEntries(r.manifest.parts.map((p) => [p.name, p.count])) }),
        );
        return { file: made.file, durationMs: made.durationMs, instance: made.manifest.instance, parts: made.manifest.parts.map((p) => ({ name: p.name, count: p.count, bytes: p.bytes })) };
      } catch (err) {
        throw final(err);
      }
    },

    async 'backup-verify'(job: Job<JobData<'backup-verify'>>) {
      const data = JOBS['backup-verify'].schema.parse(job.data);
      const file = data.file ?? backups.list()[0]?.file;
      if (!file) return { skipped: 'there is no backup to verify yet' };
      try {
        const result = await deps.audit.timed(
          { actor: data.actor, action: 'backup.verify', target: file, details: { jobId: job.id } },
          async () => {
            const r = await backups.verify(file, { actor: data.actor, onProgress: progressOf(job) });
            if (!r.ok) throw new Error(`${file} did not verify: ${r.problems.slice(0, 3).join('; ')}`);
            return r;
          },
          (r) => ({ counts: r.counts.length, probes: r.probes.length }),
        );
        return { file: result.file, ok: result.ok, durationMs: result.durationMs, problems: result.problems };
      } catch (err) {
        throw final(err);
      }
    },

    async 'backup-restore'(job: Job<JobData<'backup-restore'>>) {
      const data = JOBS['backup-restore'].schema.parse(job.data);
      try {
        const result = await deps.audit.timed(
          { actor: data.actor, action: 'backup.restore', target: data.file, details: { jobId: job.id, instance: data.instance ?? null, replace: data.replace } },
          () => backups.restore(data.file, { ...(data.instance ? { instance: data.instance } : {}), replace: data.replace, actor: data.actor, onProgress: progressOf(job) }),
          (r) => ({ problems: r.problems }),
        );
        return { file: data.file, durationMs: result.durationMs, problems: result.problems, counts: result.counts };
      } catch (err) {
        throw final(err);
      }
    },

    async 'backup-prune'(job: Job<JobData<'backup-prune'>>) {
      const data = JOBS['backup-prune'].schema.parse(job.data);
      return deps.audit.timed(
        { actor: data.actor, action: 'backup.prune', target: backups.dir, details: { jobId: job.id } },
        async () => backups.prune(),
        (r) => ({ kept: r.kept.length, removed: r.removed }),
      );
    },

    /**
     * Queues an incremental run for every indexed branch of repositories that no webhook delivery has reached
     * in the last day (a run of an unchanged branch only fetches and compares; equal runs coalesce).
     */
    async 'repository-poll'(job: Job<JobData<'repository-poll'>>) {
      const data = JOBS['repository-poll'].schema.parse(job.data);
      return deps.audit.timed(
        { actor: data.actor, action: 'repository.poll', target: null, details: { jobId: job.id } },
        async () => {
          const { rows } = await deps.stores.postgres.pool.query<{ id: string; branch: string }>(
            `SELECT b.repository_id AS id, b.branch FROM repository_branches b
              WHERE b.indexed_commit IS NOT NULL
                AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.repository_id = b.repository_id AND d.received_at > now() - interval '1 day')
              ORDER BY b.repository_id, b.branch`,
          );
          const queued: string[] = [];
          for (const r of rows) queued.push((await deps.enqueue('index-repository', { repositoryId: Number(r.id), branch: r.branch, full: false })).id);
          return { queued: queued.length };
        },
        (r) => r,
      );
    },
  };
}
