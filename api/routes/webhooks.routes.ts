import type { FastifyPluginAsync } from 'fastify';
import type { WebhookService } from '../../shared/webhooks/webhook.service.ts';

/**
 * POST /webhooks/github and /webhooks/gitlab. Bodies are read raw: the
 * signature covers the exact bytes, which re-serialised JSON would not match.
 * No bearer token here: the provider proves itself with the shared secret.
 */
export const webhookRoutes: FastifyPluginAsync<{ webhooks: WebhookService }> = async (app, { webhooks }) => {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, body, done) => done(null, body));

  for (const provider of ['github', 'gitlab'] as const) {
    app.post(
      `/webhooks/${provider}`,
      {
        schema: {
          tags: ['webhooks'],
          summary: provider === 'github' ? 'GitHub push webhook (X-Hub-Signature-256)' : 'GitLab push webhook (X-Gitlab-Token)',
          hide: false,
        },
        config: { rateLimit: { max: 600, timeWindow: '1 minute' } },
      },
      async (request, reply) => {
        const raw = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
        const result = await webhooks[provider](raw, request.headers);
        if (result.status === 401) return reply.status(401).send({ error: 'bad_signature', message: result.message });
        if (result.status === 400) return reply.status(400).send({ error: 'malformed_payload', message: result.message });
        return reply.status(result.status).send(result);
      },
    );
  }
};
