import type { FastifyInstance } from 'fastify';
import { badRequest, findNulCharacter, nulCharacterMessage } from '../../shared/errors.ts';

declare module 'fastify' {
  interface FastifyContextConfig {
    /**
     * The route's body is checked by what it is handed to (the MCP server checks
     * tool arguments and answers in JSON-RPC); its params and query still are here.
     */
    bodyCheckedByHandler?: boolean;
  }
}

/**
 * Rejects a NUL character (`\u0000`) anywhere in a request's params, query or
 * parsed body with a 400 naming the field, before any route runs: no value the
 * API takes may contain one, and Postgres text cannot store it, so it would
 * otherwise fail deep in a query as a 500, possibly after earlier writes.
 * Raw bodies (webhooks: Buffers) are not inspected. Register on the root
 * instance before the routes so every route gets it.
 */
export function registerInputGuard(app: FastifyInstance): void {
  app.addHook('preValidation', async (request) => {
    // Named as schema validation names fields (`branch`, `include.0`), the part of the request only for a whole value.
    const parts: Array<[string, unknown]> = [['params', request.params], ['querystring', request.query]];
    if (!request.routeOptions.config?.bodyCheckedByHandler) parts.push(['body', request.body]);
    for (const [part, value] of parts) {
      const where = findNulCharacter(value);
      if (where !== undefined) throw badRequest(nulCharacterMessage(where || part), 'validation_failed');
    }
  });
}
