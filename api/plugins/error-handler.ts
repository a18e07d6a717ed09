import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
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
        // A problem with the whole value (`/`: not an object, an unknown key) is named by the part of the request.
        const where = v.instancePath?.replace(/^\//, '').replaceAll('/', '.') || err.validationContext || 'request';
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

/**
 * Fastify's `frameworkErrors` option: errors its router raises before any
 * route (and so this app's error handler) is involved, answered in the one
 * error shape instead of Fastify's own ({ statusCode, code, error, message }).
 */
export function frameworkErrorHandler(err: FastifyError, _request: FastifyRequest, reply: FastifyReply): void {
  const status = err.statusCode ?? 400;
  const messages: Record<string, string> = {
    FST_ERR_BAD_URL: 'the URL is not valid: a percent-encoded part does not decode to UTF-8 text',
    FST_ERR_MAX_PARAM_LENGTH: 'a path parameter is too long (at most 100 characters)',
  };
  void reply.status(status).send({
    error: (err.code ?? 'bad_request').replace(/^FST_ERR_/, '').toLowerCase(),
    message: messages[err.code] ?? err.message,
  });
}
