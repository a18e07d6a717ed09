import cookie from '@fastify/cookie';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { AppError } from '../../shared/errors.ts';
import { canUseInstance, hasScope, SCOPES, type Principal, type Scope, type TokenService } from '../../shared/auth/token.service.ts';

/** HttpOnly cookie holding a token for browser sessions (dashboard), set by POST /auth/session. */
export const SESSION_COOKIE = 'pk_session';

/** Same signature for `onRequest` (preferred: rejects before the body is read) and `preHandler`. */
export type AuthHook = (request: FastifyRequest, reply: FastifyReply) => Promise<void>;

declare module 'fastify' {
  interface FastifyRequest {
    /** The authenticated token; set by `requireScope`, null on routes that do not require one. */
    principal: Principal | null;
  }
  interface FastifyInstance {
    /** A hook that authenticates the request and requires `scope` (admin ⊇ write ⊇ read). */
    requireScope(scope: Scope): AuthHook;
  }
}

export interface AuthOptions {
  tokens: Pick<TokenService, 'verify'>;
}

function unauthorized(reply: FastifyReply, message: string, invalidToken: boolean): AppError {
  // RFC 6750 §3.1: no error code when no credentials were sent at all.
  reply.header('WWW-Authenticate', invalidToken ? 'Bearer error="invalid_token"' : 'Bearer');
  return new AppError(401, 'unauthorized', message);
}

const forbidden = (message: string) => new AppError(403, 'forbidden', message);

/** The presented token: an `Authorization: Bearer` header wins over the session cookie. */
function credentialsOf(request: FastifyRequest): { token: string; source: 'header' | 'cookie' } | undefined {
  const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(request.headers.authorization ?? '');
  if (match?.[1]) return { token: match[1], source: 'header' };
  const fromCookie = request.cookies?.[SESSION_COOKIE];
  return fromCookie ? { token: fromCookie, source: 'cookie' } : undefined;
}

/**
 * Throws 403 unless the request's token may use `instance`. Routes call this
 * once they know which instance a request touches; the route must have a
 * `requireScope` hook, otherwise this fails closed with a 500.
 */
export function assertInstance(request: FastifyRequest, instance: string): void {
  const principal = request.principal;
  if (!principal) throw new Error(`assertInstance on ${request.routeOptions.url ?? request.url} without a requireScope hook`);
  if (!canUseInstance(principal, instance)) throw forbidden(`token '${principal.name}' may not use instance '${instance}'`);
}

/**
 * Throws 403 unless the request's token may use every configured instance.
 * For what spans all instances at once: token management (an admin of one
 * instance could otherwise mint, or rotate and read, a token for the others)
 * and the queue dashboard (every instance's jobs, and queue-wide actions).
 */
export function assertEveryInstance(request: FastifyRequest, configured: readonly string[]): void {
  const principal = request.principal;
  if (!principal) throw new Error(`assertEveryInstance on ${request.routeOptions.url ?? request.url} without a requireScope hook`);
  const missing = configured.filter((i) => !canUseInstance(principal, i));
  if (missing.length > 0) {
    throw forbidden(`token '${principal.name}' may not use instance${missing.length > 1 ? 's' : ''} '${missing.join("', '")}': this needs an admin token for every instance`);
  }
}

/**
 * Bearer-token authentication. Not wrapped as an encapsulated plugin on
 * purpose (fastify-plugin is not a dependency): call it on the root instance so
 * `request.principal` and `app.requireScope` are visible to every route.
 */
export async function registerAuth(app: FastifyInstance, options: AuthOptions): Promise<void> {
  const { tokens } = options;
  // @fastify/cookie is itself non-encapsulated; register it unless the app already did (with its own options).
  if (!app.hasDecorator('parseCookie')) await app.register(cookie);
  app.decorateRequest('principal', null);

  async function authenticate(request: FastifyRequest, reply: FastifyReply): Promise<Principal> {
    if (request.principal) return request.principal;
    const credentials = credentialsOf(request);
    if (!credentials) throw unauthorized(reply, 'missing bearer token', false);
    const principal = await tokens.verify(credentials.token);
    if (!principal) {
      // A dead session cookie would otherwise be sent, and rejected, on every request.
      if (credentials.source === 'cookie') reply.clearCookie(SESSION_COOKIE, { path: '/' });
      throw unauthorized(reply, 'invalid, expired or revoked token', true);
    }
    request.principal = principal;
    return principal;
  }

  app.decorate('requireScope', (scope: Scope): AuthHook => {
    if (!(SCOPES as readonly string[]).includes(scope)) throw new Error(`requireScope: unknown scope '${scope}'`);
    return async (request, reply) => {
      const principal = await authenticate(request, reply);
      if (!hasScope(principal, scope)) throw forbidden(`token '${principal.name}' lacks the '${scope}' scope`);
    };
  });

  await app.register(async (child) => sessionRoutes(child, tokens));
}

const sessionBody = z.object({ token: z.string().min(1).max(256).describe('an API token (pk_mcp_…)') });
const sessionResponse = z.object({
  name: z.string(),
  scopes: z.array(z.enum(SCOPES)),
  instances: z.array(z.string()),
  expiresAt: z.string().nullable(),
});

/** Encapsulated so that the form parser it adds applies to these routes only. */
async function sessionRoutes(instance: FastifyInstance, tokens: AuthOptions['tokens']): Promise<void> {
  const app = instance.withTypeProvider<ZodTypeProvider>();
  if (!app.hasContentTypeParser('application/x-www-form-urlencoded')) {
    // A plain HTML login form posts this; a token is short, so the limit is small.
    app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: 4096 }, (_request, body, done) => {
      done(null, Object.fromEntries(new URLSearchParams(body as string)));
    });
  }

  app.post(
    '/auth/session',
    {
      schema: {
        description: 'Exchange a token for an HttpOnly session cookie (for browsers); JSON or form body.',
        body: sessionBody,
        response: { 200: sessionResponse },
      },
    },
    async (request, reply) => {
      const principal = await tokens.verify(request.body.token);
      if (!principal) throw unauthorized(reply, 'invalid, expired or revoked token', true);
      reply.setCookie(SESSION_COOKIE, request.body.token, {
        httpOnly: true,
        // Strict: a cross-site request never carries the cookie, which is what stops CSRF on cookie-authenticated routes.
        sameSite: 'strict',
        secure: request.protocol === 'https',
        path: '/',
        // No Max-Age for tokens without expiry: the cookie ends with the browser session.
        ...(principal.expiresAt ? { expires: principal.expiresAt } : {}),
      });
      return {
        name: principal.name,
        scopes: principal.scopes,
        instances: principal.instances,
        expiresAt: principal.expiresAt?.toISOString() ?? null,
      };
    },
  );

  app.delete(
    '/auth/session',
    { schema: { description: 'End the browser session: clears the session cookie.', response: { 204: z.null() } } },
    async (_request, reply) => {
      reply.clearCookie(SESSION_COOKIE, { path: '/', httpOnly: true, sameSite: 'strict' });
      return reply.status(204).send(null);
    },
  );
}
