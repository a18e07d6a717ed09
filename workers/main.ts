import { UnrecoverableError, Worker, type Job } from 'bullmq';
import { ConfigError, loadConfig, loadDotEnv } from '../shared/config/config.ts';
import { migrateDatabase } from '../shared/db/migrate.ts';
import { createLogger } from '../shared/logger.ts';
import { JOBS } from '../shared/queue/jobs.ts';
import { QUEUE_NAMES, type JobSpec } from '../shared/queue/registry.ts';
import { createShutdown, onSignals } from '../shared/shutdown.ts';
import { closeStores, createStores } from '../shared/stores/stores.ts';
import { HANDLERS } from './handlers.ts';

/** Composition root of the worker process: one BullMQ worker pool per queue. */
async function main(): Promise<void> {
  loadDotEnv();
  const config = loadConfig();
  const logger = createLogger(config, { name: 'workers' });
  const stores = createStores(config, logger);
  await migrateDatabase({ databaseUrl: config.databaseUrl, schema: config.databaseSchema }, logger);

  const handlers = HANDLERS({ stores, logger, config });
  const workers = QUEUE_NAMES.map((queue) => {
    const worker = new Worker(
      queue,
      async (job: Job) => {
        const spec = (JOBS as Record<string, JobSpec>)[job.name];
        const handler = (handlers as Record<string, (job: Job) => Promise<unknown>>)[job.name];
        if (!spec || !handler || spec.queue !== queue) {
          throw new UnrecoverableError(`no handler for job "${job.name}" on queue "${queue}"`);
        }
        const parsed = spec.schema.safeParse(job.data);
        if (!parsed.success) throw new UnrecoverableError(`invalid payload for ${job.name}: ${parsed.error.message}`);
        return handler(job);
      },
      {
        // Workers block on Redis: each needs its own connection.
        connection: stores.redis.duplicate({ maxRetriesPerRequest: null }),
        prefix: config.queuePrefix,
        concurrency: config.workerConcurrency,
        autorun: true,
      },
    );
    worker.on('error', (err) => logger.warn({ queue, err: err.message }, 'worker error'));
    worker.on('failed', (job, err) =>
      logger.warn({ queue, jobId: job?.id, name: job?.name, attempt: job?.attemptsMade, err: err.message }, 'job failed'),
    );
    return worker;
  });
  logger.info({ queues: QUEUE_NAMES, concurrency: config.workerConcurrency, prefix: config.queuePrefix }, 'workers ready');

  const shutdown = createShutdown(
    logger,
    [
      { name: 'workers', run: () => Promise.all(workers.map((w) => w.close())) },
      { name: 'stores', run: () => closeStores(stores) },
    ],
    config.shutdownTimeoutMs,
  );
  onSignals(logger, shutdown);
}

main().catch((err) => {
  process.stderr.write(
    err instanceof ConfigError ? `${err.message}\n` : `workers failed to start: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
  );
  process.exit(1);
});
