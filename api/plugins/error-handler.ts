import type { FastifyError, FastifyInstance } from 'fastify';
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod';
import { AppError } from '../../shared/errors.ts';

/**
 * The one error handler: every 4xx has `{ error, message }` with a stable code
 * and a precise message; 5xx are logged with the request and hide internals.
 */
export function registerErrorHandler(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError, request, reply) => {
    if (hasZodFastifySchemaValidationErrors(err)) {
      const details = err.validation.map((v) => {
        const where = v.instancePath ? v.instancePath.replace(/^\//, '').replaceAll('/', '.') : err.validationContext;
        return `${where}: ${v.message}`;
      });
      return reply.status(400).send({ error: 'validation_failed', message: details.join('; ') });
    }
    if (err instanceof AppError) {
      return reply.status(err.statusCode).send({ error: err.code, message: err.message });
    }
    const status = err.statusCode ?? 500;
    if (status >= 400 && status < 500) {
      // Fastify's own client errors (bad JSON, body too large, unsupported media type).
      const code = (err.code ?? 'bad_request').replace(/^FST_ERR_/, '').toLowerCase();
      return reply.status(status).send({ error: code, message: err.message });
    }
    request.log.error({ err }, 'request failed');
    return reply.status(500).send({ error: 'internal_error', message: 'Internal server error' });
  });

  app.setNotFoundHandler((request, reply) =>
    reply.status(404).send({ error: 'not_found', message: `No route ${request.method} ${request.url}` }),
  );
}
