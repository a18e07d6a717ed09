import type { FastifyPluginAsync } from 'fastify';
import { nulCharacterMessage } from '../../shared/errors.ts';
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
        // Both providers send JSON when configured as the README says; GitHub's other option, form-encoded
        // (`payload=<url-encoded JSON>`), was answered "not a JSON object" on every delivery, and text/plain or
        // no content type were parsed as JSON anyway. The header is not secret: answering first reveals nothing.
        if (!isJson(request.headers['content-type'])) {
          return reply.status(415).send({
            error: 'unsupported_media_type',
            message: `send webhooks as application/json${provider === 'github' ? " (the GitHub webhook's \"Content type\" setting)" : ''}`,
          });
        }
        const raw = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
        // The service looks the pushed branch up in Postgres, which cannot take a NUL: that failed as a 500.
        // Only a body with the escape in it is parsed twice.
        if (raw.includes('\\u0000') && pushedRef(raw)?.includes('\u0000')) {
          return reply.status(400).send({ error: 'malformed_payload', message: nulCharacterMessage('ref') });
        }
        const result = await webhooks[provider](raw, request.headers);
        if (result.status === 401) return reply.status(401).send({ error: 'bad_signature', message: result.message });
        if (result.status === 400) return reply.status(400).send({ error: 'malformed_payload', message: result.message });
        return reply.status(result.status).send(result);
      },
    );
  }
};

function isJson(contentType: string | undefined): boolean {
  return contentType?.split(';')[0]?.trim().toLowerCase() === 'application/json';
}

/** The payload's `ref` (both providers name the pushed ref so), or undefined when the body is not a JSON object with one. */
function pushedRef(raw: Buffer): string | undefined {
  try {
    const payload: unknown = JSON.parse(raw.toString('utf8'));
    const ref = payload && typeof payload === 'object' ? (payload as { ref?: unknown }).ref : undefined;
    return typeof ref === 'string' ? ref : undefined;
  } catch {
    return undefined; // the service answers a body that is not JSON
  }
}
