import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { BackupService } from '../../shared/backup/backup.service.ts';
import type { Platform } from '../../shared/platform.ts';
import { badRequest } from '../../shared/errors.ts';
import { adminOfEveryInstance, assertEveryInstance, assertInstance, bodyInstanceCheck } from '../plugins/auth.plugin.ts';
import { errorResponses } from '../schemas/common.ts';

const fileName = z
  .string()
  .regex(/^[A-Za-z0-9._-]+\.tar\.gz$/, 'must be the name of a set in the backup folder (<name>.tar.gz), not a path')
  .describe('backup file name, as `GET /admin/backups` lists it');
const instanceName = z.string().regex(/^[a-z][a-z0-9_-]{0,31}$/, 'is not an instance name');
const queued = z.object({ jobId: z.string(), queue: z.string() });

/**
 * Admin routes of maintenance: backups (list, create, verify, restore, prune) and the audit trail. Long work
 * is queued on the maintenance queue and answered 202 with its job id (`GET /api/v1/jobs/:id` follows it).
 * Backing up one instance takes an admin token of that instance; everything else spans every instance.
 */
export const adminRoutes: FastifyPluginAsyncZod<{ platform: Platform; backups: BackupService }> = async (app, { platform, backups }) => {
  const requireAdmin = app.requireScope('admin');
  const configured = platform.config.instances;
  const everyInstance = adminOfEveryInstance(app, configured);

  app.get(
    '/admin/backups',
    {
      ...everyInstance,
      schema: {
        tags: ['admin'],
        summary: 'Backup sets in the backup folder, newest first: time, size, counts, verified or not',
        response: { 200: z.object({ dir: z.string(), backups: z.array(z.record(z.string(), z.unknown())) }), ...errorResponses },
      },
    },
    async () => ({ dir: backups.dir, backups: backups.list() as unknown as Array<Record<string, unknown>> }),
  );

  app.post(
    '/admin/backups',
    {
      onRequest: requireAdmin,
      preValidation: bodyInstanceCheck(configured),
      // Who asked, from where; the job records the outcome as `backup.create` (likewise below).
      config: { audit: { action: 'backup.create.queued', target: (request) => (request.body as { instance?: string } | undefined)?.instance ?? 'all' } },
      schema: {
        tags: ['admin'],
        summary: 'Take a backup set of one instance, or of every instance (and the tokens and audit trail)',
        body: z.object({ instance: instanceName.optional().describe('one instance; every instance when left out') }).strict().optional(),
        response: { 202: queued, ...errorResponses },
      },
    },
    async (request, reply) => {
      const instance = request.body?.instance;
      if (instance !== undefined) {
        if (!configured.includes(instance)) throw badRequest(`unknown instance "${instance}" (configured: ${configured.join(', ')})`, 'unknown_instance');
        assertInstance(request, instance);
      } else {
        assertEveryInstance(request, configured);
      }
      const job = await platform.queues.enqueue('backup-create', { ...(instance ? { instance } : {}), actor: request.principal!.name });
      return reply.status(202).send({ jobId: job.id, queue: job.queue });
    },
  );

  app.post(
    '/admin/backups/:file/verify',
    {
      ...everyInstance,
      config: { audit: { action: 'backup.verify.queued' } },
      schema: {
        tags: ['admin'],
        summary: 'Verify a set: restore it into a scratch namespace, compare every count, run its probes, drop it',
        params: z.object({ file: fileName }),
        response: { 202: queued, ...errorResponses },
      },
    },
    async (request, reply) => {
      backups.resolveFile(request.params.file);
      const job = await platform.queues.enqueue('backup-verify', { file: request.params.file, actor: request.principal!.name });
      return reply.status(202).send({ jobId: job.id, queue: job.queue });
    },
  );

  app.post(
    '/admin/backups/:file/restore',
    {
      ...everyInstance,
      config: { audit: { action: 'backup.restore.queued' } },
      schema: {
        tags: ['admin'],
        summary: 'Restore a set (checked whole first); replaces existing data only with `replace: true`',
        params: z.object({ file: fileName }),
        body: z
          .object({
            instance: instanceName.optional().describe('restore this instance only (from a set of every instance)'),
            replace: z.boolean().default(false).describe('replace what is there; without it a restore over existing data is refused'),
          })
          .strict()
          .optional(),
        response: { 202: queued, ...errorResponses },
      },
    },
    async (request, reply) => {
      backups.resolveFile(request.params.file);
      const job = await platform.queues.enqueue('backup-restore', {
        file: request.params.file,
        ...(request.body?.instance ? { instance: request.body.instance } : {}),
        replace: request.body?.replace ?? false,
        actor: request.principal!.name,
      });
      return reply.status(202).send({ jobId: job.id, queue: job.queue });
    },
  );

  app.post(
    '/admin/backups/prune',
    {
      ...everyInstance,
      config: { audit: { action: 'backup.prune.queued', target: () => 'backups' } },
      schema: { tags: ['admin'], summary: 'Remove the sets the retention policy does not keep', response: { 202: queued, ...errorResponses } },
    },
    async (request, reply) => {
      const job = await platform.queues.enqueue('backup-prune', { actor: request.principal!.name });
      return reply.status(202).send({ jobId: job.id, queue: job.queue });
    },
  );

  app.get(
    '/admin/audit',
    {
      ...everyInstance,
      schema: {
        tags: ['admin'],
        summary: 'The audit trail, newest first: admin actions, maintenance jobs and refused requests with who, what, result, source address and duration',
        querystring: z
          .object({
            since: z.iso.datetime({ offset: true }).optional().describe('ISO 8601 time, e.g. 2026-12-01T00:00:00Z'),
            principal: z.string().min(1).max(300).optional().describe("who acted: a token's name, oidc:<subject>, 'anonymous', 'cli', or 'schedule:<name>'"),
            action: z.string().min(1).max(100).optional().describe('an action (backup.create) or a family (backup, auth)'),
            result: z.enum(['ok', 'failed', 'refused']).optional().describe('only rows with this outcome'),
            limit: z.coerce.number().int().min(1).max(1000).default(100),
          })
          .strict(),
        response: { 200: z.object({ entries: z.array(z.record(z.string(), z.unknown())) }), ...errorResponses },
      },
    },
    async (request) => {
      const q = request.query;
      const entries = await platform.audit.list({
        ...(q.since ? { since: new Date(q.since) } : {}),
        ...(q.principal ? { actor: q.principal } : {}),
        ...(q.action ? { action: q.action } : {}),
        ...(q.result ? { result: q.result } : {}),
        limit: q.limit,
      });
      return { entries: entries.map((e) => ({ ...e, at: e.at.toISOString() })) };
    },
  );
};
