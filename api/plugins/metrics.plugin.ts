import type { FastifyInstance } from 'fastify';
import Fastify from 'fastify';
import { Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { QueueEvents } from 'bullmq';
import type { RedisConnection } from '../../shared/stores/redis.connection.ts';
import type { QueueRegistry } from '../../shared/queue/queues.ts';
import { QUEUE_NAMES } from '../../shared/queue/registry.ts';
import { readWorkerCounters } from '../../shared/queue/worker-metrics.ts';
import { withTimeout } from '../../shared/errors.ts';

export interface Metrics {
  registry: Registry;
  searchSeconds: Histogram<'kind'>;
  /** Times every response of `app` into the HTTP histogram. */
  hookInto(app: FastifyInstance): void;
  close(): Promise<void>;
}

/**
 * Prometheus metrics: HTTP latency per route, queue depths and job durations
 * per queue, search latency, and the embedding calls and tokens the workers
 * spent (they count into Redis; see shared/queue/worker-metrics.ts).
 */
export function createMetrics(options: { queues: QueueRegistry; redis: RedisConnection; queuePrefix: string }): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'pkmcp_' });
  const http = new Histogram({
    name: 'pkmcp_http_request_duration_seconds',
    help: 'HTTP request latency by route and status',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  });
  const searchSeconds = new Histogram({
    name: 'pkmcp_search_duration_seconds',
    help: 'Search and graph query latency',
    labelNames: ['kind'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
    registers: [registry],
  });
  const jobSeconds = new Histogram({
    name: 'pkmcp_job_duration_seconds',
    help: 'Time from a job starting to it finishing, by queue, name and outcome',
    labelNames: ['queue', 'name', 'outcome'] as const,
    buckets: [0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900],
    registers: [registry],
  });
  new Gauge({
    name: 'pkmcp_queue_jobs',
    help: 'Jobs per queue and state',
    labelNames: ['queue', 'state'] as const,
    registers: [registry],
    async collect() {
      this.reset();
      for (const name of QUEUE_NAMES) {
        const counts = await options.queues.queues[name].getJobCounts('active', 'waiting', 'waiting-children', 'delayed', 'failed', 'completed', 'prioritized');
        for (const [state, n] of Object.entries(counts)) this.set({ queue: name, state }, n);
      }
    },
  });
  new Gauge({
    name: 'pkmcp_embedding_requests',
    help: 'Embedding requests, inputs and estimated tokens the workers have spent (cumulative)',
    labelNames: ['what'] as const,
    registers: [registry],
    async collect() {
      const counters = await readWorkerCounters(options.redis.client, options.queuePrefix);
      for (const [what, n] of Object.entries(counters)) this.set({ what }, n);
    },
  });

  // Job durations from the queues' event streams: one reader per queue, in the API process.
  const events = QUEUE_NAMES.map((name) => {
    const qe = new QueueEvents(name, { connection: options.redis.duplicate(), prefix: options.queuePrefix, autorun: true });
    qe.on('error', () => undefined);
    const observe = async (jobId: string, outcome: 'completed' | 'failed') => {
      const job = await options.queues.queues[name].getJob(jobId);
      if (job?.processedOn && job.finishedOn) jobSeconds.observe({ queue: name, name: job.name, outcome }, (job.finishedOn - job.processedOn) / 1000);
    };
    qe.on('completed', ({ jobId }) => void observe(jobId, 'completed').catch(() => undefined));
    qe.on('failed', ({ jobId }) => void observe(jobId, 'failed').catch(() => undefined));
    return qe;
  });

  return {
    registry,
    searchSeconds,
    hookInto(app: FastifyInstance) {
      app.addHook('onResponse', async (request, reply) => {
        const route = request.routeOptions.url ?? 'unmatched';
        http.observe({ method: request.method, route, status: String(reply.statusCode) }, reply.elapsedTime / 1000);
      });
    },
    async close() {
      // A QueueEvents reader on a Redis that is down would wait for it forever; give up after a moment.
      await Promise.allSettled(events.map((e) => withTimeout(e.close(), 2000, 'queue events').catch(() => void e.disconnect().catch(() => undefined))));
    },
  };
}

/** /metrics on the API behind the admin scope, or on its own loopback port when METRICS_PORT is set. */
export async function registerMetrics(app: FastifyInstance, metrics: Metrics, port: number | undefined): Promise<FastifyInstance | undefined> {
  metrics.hookInto(app);
  const handler = async (_request: unknown, reply: { header(k: string, v: string): unknown; send(b: string): unknown }) => {
    reply.header('content-type', metrics.registry.contentType);
    return reply.send(await metrics.registry.metrics());
  };
  if (port === undefined) {
    app.get('/metrics', { onRequest: app.requireScope('admin'), schema: { hide: true } }, handler);
    return undefined;
  }
  const server = Fastify({ logger: false });
  server.get('/metrics', handler);
  await server.listen({ host: '127.0.0.1', port });
  return server;
}
