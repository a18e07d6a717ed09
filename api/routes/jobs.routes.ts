import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { notFound } from '../../shared/errors.ts';
import type { Platform } from '../../shared/platform.ts';
import { JOB_STATES, type JobStatusService, type JobView } from '../../shared/queue/job-status.service.ts';
import { QUEUE_NAMES } from '../../shared/queue/registry.ts';
import { commaList, errorResponses } from '../schemas/common.ts';

export const jobSchema = z.object({
  id: z.string(),
  queue: z.enum(QUEUE_NAMES),
  name: z.string(),
  state: z.string(),
  progress: z.unknown(),
  batches: z.object({ done: z.number(), total: z.number() }).optional(),
  attempts: z.number(),
  failedReason: z.string().optional(),
  result: z.unknown().optional(),
  repositoryId: z.number().optional(),
  createdAt: z.string(),
  finishedAt: z.string().optional(),
});

export const jobRoutes: FastifyPluginAsyncZod<{ platform: Platform; jobs: JobStatusService }> = async (app, { platform, jobs }) => {
  /** Jobs of repositories in the token's instances; jobs of no repository (maintenance) only for admins. */
  async function visibleFilter(instances: string[], admin: boolean): Promise<(job: JobView) => boolean> {
    const repos = await platform.repositories.list({ instances });
    const ids = new Set(repos.map((r) => r.id));
    return (job) => (job.repositoryId === undefined ? admin : ids.has(job.repositoryId));
  }

  app.get(
    '/jobs/:id',
    {
      onRequest: app.requireScope('read'),
      schema: {
        tags: ['jobs'],
        summary: 'State, progress and failure reason of a job',
        params: z.object({ id: z.string().min(1).max(200) }),
        response: { 200: jobSchema, ...errorResponses },
      },
    },
    async (request) => {
      const job = await jobs.get(request.params.id);
      const p = request.principal!;
      if (!job || !(await visibleFilter(p.instances, p.scopes.includes('admin')))(job)) {
        throw notFound(`no job with id ${request.params.id}`, 'job_not_found');
      }
      return job;
    },
  );

  app.get(
    '/jobs',
    {
      onRequest: app.requireScope('read'),
      schema: {
        tags: ['jobs'],
        summary: 'Recent jobs by queue and state',
        querystring: z.object({
          // An empty list (`?queue=`) would otherwise look in no queue and answer "no jobs".
          queue: commaList.pipe(z.array(z.enum(QUEUE_NAMES)).min(1, 'name at least one queue')).optional().describe(`queues: ${QUEUE_NAMES.join(', ')}`),
          state: commaList.pipe(z.array(z.enum(JOB_STATES)).min(1, 'name at least one state')).optional().describe(`states: ${JOB_STATES.join(', ')}`),
          limit: z.coerce.number().int().min(1).max(200).optional().describe('jobs per queue (default 20)'),
        }),
        response: { 200: z.object({ jobs: z.array(jobSchema) }), ...errorResponses },
      },
    },
    async (request) => {
      const p = request.principal!;
      const visible = await visibleFilter(p.instances, p.scopes.includes('admin'));
      const list = await jobs.list({ queues: request.query.queue, states: request.query.state, limit: request.query.limit });
      return { jobs: list.filter(visible) };
    },
  );

  app.get(
    '/instances',
    {
      onRequest: app.requireScope('read'),
      schema: {
        tags: ['instances'],
        summary: 'Instances this token may use, with their repository counts',
        response: { 200: z.object({ instances: z.array(z.object({ name: z.string(), repositories: z.number() })) }), ...errorResponses },
      },
    },
    async (request) => {
      const allowed = request.principal!.instances;
      const repos = await platform.repositories.list({ instances: allowed });
      return { instances: allowed.map((name: string) => ({ name, repositories: repos.filter((r) => r.instance === name).length })) };
    },
  );
};
