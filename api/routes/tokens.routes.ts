import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { parseDuration, type TokenService } from '../../shared/auth/token.service.ts';
import { adminOfEveryInstance } from '../plugins/auth.plugin.ts';
import { errorResponses } from '../schemas/common.ts';

const scope = z.enum(['read', 'write', 'admin']);
const tokenName = z.string().min(1).max(64).describe('token name');

export const tokenRoutes: FastifyPluginAsyncZod<{ tokens: TokenService; instances: string[] }> = async (app, { tokens, instances: configured }) => {
  // Managing tokens is managing access to every instance: an admin of some instances only would otherwise
  // create a '*' token, or rotate one and receive its new value.
  const admin = adminOfEveryInstance(app, configured);

  // The token service records each change (with who and from where) in the transaction that makes it;
  // the routes add a row only for a refused or failed request.
  app.post(
    '/tokens',
    {
      ...admin,
      config: { audit: { action: 'token.create', target: (request) => (request.body as { name?: unknown } | undefined)?.name as string | undefined, unlessOk: true } },
      schema: {
        tags: ['tokens'],
        summary: 'Create a token; its value is in this answer only',
        body: z
          .object({
            name: tokenName,
            scopes: z.array(scope).min(1).describe('read, write, admin (admin implies all)'),
            instances: z.array(z.string().max(100)).min(1).max(100).describe("instances it may use, or ['*'] for all"),
            expires: z.string().max(20).optional().describe('lifetime such as 30d, 24h, 90m; omit for a token that never expires'),
            rotateEvery: z.string().max(20).optional().describe('mark it for rotation: secret rotation gives it a new value this often (such as 30d), written to the secrets folder as token-<name>'),
          })
          .strict(),
        response: { 201: z.object({ name: z.string(), token: z.string().describe('shown once'), scopes: z.array(scope), instances: z.array(z.string()), expiresAt: z.string().nullable() }), ...errorResponses },
      },
    },
    async (request, reply) => {
      const { name, scopes, instances, expires, rotateEvery } = request.body;
      const created = await tokens.create({
        name,
        scopes,
        instances,
        actor: request.principal!.name,
        source: request.ip,
        ...(expires !== undefined ? { expiresInMs: parseDuration(expires) } : {}),
        ...(rotateEvery !== undefined ? { rotateEveryMs: parseDuration(rotateEvery) } : {}),
      });
      return reply.status(201).send({
        name: created.record.name,
        token: created.token,
        scopes: created.record.scopes,
        instances: created.record.instances,
        expiresAt: created.record.expiresAt ? new Date(created.record.expiresAt).toISOString() : null,
      });
    },
  );

  app.get(
    '/tokens',
    {
      ...admin,
      schema: {
        tags: ['tokens'],
        summary: 'List tokens (never their values)',
        response: { 200: z.object({ tokens: z.array(z.record(z.string(), z.unknown())) }), ...errorResponses },
      },
    },
    async () => ({ tokens: (await tokens.list()) as unknown as Array<Record<string, unknown>> }),
  );

  app.delete(
    '/tokens/:name',
    {
      ...admin,
      config: { audit: { action: 'token.revoke', unlessOk: true } },
      schema: { tags: ['tokens'], summary: 'Revoke a token', params: z.object({ name: tokenName }), response: { 204: z.null(), ...errorResponses } },
    },
    async (request, reply) => {
      await tokens.revoke(request.params.name, { actor: request.principal!.name, source: request.ip });
      return reply.status(204).send(null);
    },
  );

  app.post(
    '/tokens/:name/rotate',
    {
      ...admin,
      config: { audit: { action: 'token.rotate', unlessOk: true } },
      schema: {
        tags: ['tokens'],
        summary: 'Give a token a new value; the old one stays valid for the grace period',
        params: z.object({ name: tokenName }),
        body: z
          .object({ grace: z.string().max(20).optional().describe('how long the old value keeps working, such as 24h (default 0: not at all)') })
          .strict()
          .optional(),
        response: { 200: z.object({ name: z.string(), token: z.string().describe('shown once') }), ...errorResponses },
      },
    },
    async (request) => {
      const grace = request.body?.grace;
      // `grace: ""` is a mistake to report, not a request for no grace: only an absent grace means 0.
      const rotated = await tokens.rotate(request.params.name, { graceMs: grace !== undefined ? parseDuration(grace) : 0, actor: request.principal!.name, source: request.ip });
      return { name: request.params.name, token: rotated.token };
    },
  );
};
