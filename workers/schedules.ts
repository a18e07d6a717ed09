import type { Config } from '../shared/config/config.ts';
import type { Logger } from '../shared/logger.ts';
import { JOBS, type JobName } from '../shared/queue/jobs.ts';
import type { QueueRegistry } from '../shared/queue/queues.ts';

/** The job schedulers the workers keep, by id: which job, from which cron of the config. */
export const SCHEDULES = {
  backup: { job: 'backup-create', cron: (c: Config) => c.schedules.backup },
  'backup-prune': { job: 'backup-prune', cron: (c: Config) => c.schedules.prune },
  'backup-verify': { job: 'backup-verify', cron: (c: Config) => c.schedules.verify },
  'secret-rotate': { job: 'secret-rotate', cron: (c: Config) => c.schedules.secretRotation },
  'repository-poll': { job: 'repository-poll', cron: (c: Config) => c.schedules.repositoryPoll },
} as const satisfies Record<string, { job: JobName; cron: (c: Config) => string }>;

/**
 * Upserts every schedule from the config (BullMQ job schedulers: one per id in Redis, so any number of
 * workers starting together keep one schedule and one run per tick), and removes those turned off. A
 * changed cron or time zone replaces the schedule on the next start.
 */
export async function upsertSchedules(queues: QueueRegistry, config: Config, logger: Logger): Promise<Record<string, string>> {
  const applied: Record<string, string> = {};
  for (const [id, schedule] of Object.entries(SCHEDULES)) {
    const spec = JOBS[schedule.job];
    const queue = queues.queues[spec.queue];
    const pattern = schedule.cron(config);
    if (!pattern) {
      await queue.removeJobScheduler(id);
      applied[id] = 'off';
      continue;
    }
    const data = spec.schema.parse({ actor: `schedule:${id}` });
    const { deduplication: _d, ...options } = { ...spec.options } as Record<string, unknown>;
    await queue.upsertJobScheduler(id, { pattern, tz: config.schedules.timeZone }, { name: schedule.job, data, opts: options });
    applied[id] = pattern;
  }
  logger.info({ schedules: applied, timeZone: config.schedules.timeZone }, 'schedules upserted');
  return applied;
}
