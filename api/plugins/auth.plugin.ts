import cookie from '@fastify/cookie';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { AppError, errorMessage } from '../../shared/errors.ts';
import { looksLikeJwt, MAX_JWT_BYTES, type OidcVerifier } from '../../shared/auth/oidc.verifier.ts';
import { canUseInstance, hasScope, isTokenFormat, SCOPES, type Principal, type Scope, type TokenService } from '../../shared/auth/token.service.ts';
import type { AuditRepository } from '../../shared/stores/audit.repository.ts';

/** HttpOnly cookie holding a token for browser sessions (dashboard), set by POST /auth/session. */
export const SESSION_COOKIE = 'pk_session';

/** Same signature for `onRequest` (preferred: rejects before the body is read) and `preHandler`. */
export type AuthHook = (request: FastifyRequest, reply: FastifyReply) => Promise<void>;

/** What a route records in the audit trail when it answers (`config: { audit: … }`): admin and write actions. */
export interface RouteAudit {
  /** Dotted, like the jobs' own rows: `repository.add`, `token.create`, `backup.create.queued`. */
  action: string;
  /** What it acted on; by default what the handler set in `request.auditTarget`, else the `name` or `file` parameter. */
  target?: (request: FastifyRequest) => string | null | undefined;
  /** Record refusals and failures only: the service records a success itself, in its own transaction (tokens). */
  unlessOk?: boolean;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The authenticated token; set by `requireScope`, null on routes that do not require one. */
    principal: Principal | null;
    /** What the caller presented, for the audit row of a refusal (never the value). */
    credential: CredentialKind | null;
    /** The message of the error this request was answered with, for its audit row. */
    auditError: string | null;
    /** What a route with `config.audit` acted on, when only its handler knows (a repository's derived name). */
    auditTarget: string | null;
  }
  interface FastifyInstance {
    /** A hook that authenticates the request and requires `scope` (admin ⊇ write ⊇ read). */
    requireScope(scope: Scope): AuthHook;
    /** Records a refused request in the audit trail; for places that answer a refusal themselves (the dashboard). */
    auditRefusal(request: FastifyRequest, err: AppError): Promise<void>;
  }
  interface FastifyContextConfig {
    audit?: RouteAudit;
  }
}

type CredentialKind = 'none' | 'token' | 'jwt' | 'unrecognised';

export interface AuthOptions {
  tokens: Pick<TokenService, 'verify'>;
  /** JWTs from the configured OIDC issuer; null or absent: only API tokens. */
  oidc?: OidcVerifier | null;
  /** Where refusals and admin actions are recorded; absent: nothing is (small test apps). */
  audit?: Pick<AuditRepository, 'record'> | null;
  /** URL of the protected-resource metadata (RFC 9728), named in 401 answers so OAuth-aware MCP clients find the issuer. */
  resourceMetadataUrl?: string;
}

/** How a refusal names the caller: a token by its name, a person signed in with OIDC by their subject. */
export function describePrincipal(principal: Principal): string {
  return principal.kind === 'oidc' ? `OIDC subject '${principal.subject}'` : `token '${principal.name}'`;
}

const quoted = (text: string) => text.replace(/[\\"]/g, "'").replace(/[^\x20-\x7e]/g, '?');

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
  if (!canUseInstance(principal, instance)) throw forbidden(`${describePrincipal(principal)} may not use instance '${instance}'`);
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
    throw forbidden(`${describePrincipal(principal)} may not use instance${missing.length > 1 ? 's' : ''} '${missing.join("', '")}': this needs an admin token for every instance`);
  }
}

/**
 * Route options for what spans every instance (tokens, secrets, backups of every instance, the audit trail):
 * an admin token, checked in `onRequest`, that may use every configured instance.
 */
export function adminOfEveryInstance(app: FastifyInstance, configured: readonly string[]) {
  const requireAdmin = app.requireScope('admin');
  return {
    onRequest: async (request: FastifyRequest, reply: FastifyReply) => {
      await requireAdmin(request, reply);
      assertEveryInstance(request, configured);
    },
  };
}

/**
 * A `preValidation` hook for routes whose body names the instance they act on: the instance is checked
 * once the body is parsed but before it is validated, so a caller without that instance learns nothing
 * about the schema. A value that is not a configured instance is left to validation and the handler.
 */
export function bodyInstanceCheck(configured: readonly string[]): (request: FastifyRequest) => Promise<void> {
  return async (request) => {
    const instance = (request.body as { instance?: unknown } | null | undefined)?.instance;
    if (typeof instance === 'string' && configured.includes(instance)) assertInstance(request, instance);
  };
}

/**
 * Bearer-token authentication. Not wrapped as an encapsulated plugin on
 * purpose (fastify-plugin is not a dependency): call it on the root instance so
 * `request.principal` and `app.requireScope` are visible to every route.
 */
export async function registerAuth(app: FastifyInstance, options: AuthOptions): Promise<void> {
  const { tokens, oidc, audit } = options;
  // @fastify/cookie is itself non-encapsulated; register it unless the app already did (with its own options).
  if (!app.hasDecorator('parseCookie')) await app.register(cookie);
  app.decorateRequest('principal', null);
  app.decorateRequest('credential', null);
  app.decorateRequest('auditError', null);
  app.decorateRequest('auditTarget', null);

  function unauthorized(reply: FastifyReply, message: string, invalidToken: boolean): AppError {
    // RFC 6750 §3.1: no error code when no credentials were sent at all. RFC 9728 §5.1: where the metadata is.
    const metadata = options.resourceMetadataUrl ? `resource_metadata="${options.resourceMetadataUrl}"` : '';
    const error = invalidToken ? `error="invalid_token", error_description="${quoted(message)}"` : '';
    reply.header('WWW-Authenticate', `Bearer${[metadata, error].filter(Boolean).length ? ' ' : ''}${[metadata, error].filter(Boolean).join(', ')}`);
    return new AppError(401, 'unauthorized', message);
  }

  /** The principal for a presented value: an API token, or a JWT when OIDC is configured. Throws 401/503 with the reason. */
  async function verifyCredential(request: FastifyRequest, reply: FastifyReply, value: string): Promise<Principal> {
    if (isTokenFormat(value)) {
      request.credential = 'token';
      const principal = await tokens.verify(value);
      if (!principal) throw unauthorized(reply, 'invalid, expired or revoked token', true);
      return principal;
    }
    if (looksLikeJwt(value) || value.length > MAX_JWT_BYTES) {
      request.credential = 'jwt';
      if (!oidc) throw unauthorized(reply, 'a JWT was presented, but sign-in with an identity provider is not configured here (OIDC_ISSUER): use an API token', true);
      try {
        return await oidc.verify(value);
      } catch (err) {
        if (err instanceof AppError && err.statusCode === 401) throw unauthorized(reply, err.message, true);
        throw err;
      }
    }
    request.credential = 'unrecognised';
    throw unauthorized(reply, oidc ? 'invalid token: neither an API token (pk_mcp_…) nor a JWT' : 'invalid, expired or revoked token', true);
  }

  async function authenticate(request: FastifyRequest, reply: FastifyReply): Promise<Principal> {
    if (request.principal) return request.principal;
    const credentials = credentialsOf(request);
    if (!credentials) {
      request.credential = 'none';
      throw unauthorized(reply, 'missing bearer token', false);
    }
    try {
      request.principal = await verifyCredential(request, reply, credentials.token);
    } catch (err) {
      // A dead session cookie would otherwise be sent, and rejected, on every request.
      if (credentials.source === 'cookie' && (err as AppError).statusCode === 401) reply.clearCookie(SESSION_COOKIE, { path: '/' });
      throw err;
    }
    return request.principal;
  }

  app.decorate('requireScope', (scope: Scope): AuthHook => {
    if (!(SCOPES as readonly string[]).includes(scope)) throw new Error(`requireScope: unknown scope '${scope}'`);
    return async (request, reply) => {
      const principal = await authenticate(request, reply);
      if (!hasScope(principal, scope)) {
        const hint = principal.kind === 'oidc' && principal.scopes.length === 0 ? ' (its claims map to no scope: see OIDC_SCOPES_CLAIM and OIDC_SCOPE_MAP)' : '';
        throw forbidden(`${describePrincipal(principal)} lacks the '${scope}' scope${hint}`);
      }
    };
  });

  const routeOf = (request: FastifyRequest) => `${request.method} ${request.routeOptions.url ?? request.url.split('?')[0]}`;

  /** One row per refused authentication (401), authorization (403) or unavailable identity provider (503). */
  async function auditRefusal(request: FastifyRequest, err: AppError): Promise<void> {
    if (!audit) return;
    const authentication = err.statusCode !== 403;
    await audit
      .record({
        actor: request.principal?.name ?? 'anonymous',
        action: authentication ? 'auth.authenticate' : 'auth.authorize',
        target: routeOf(request),
        result: err.statusCode === 503 ? 'failed' : 'refused',
        source: request.ip,
        // The reason, never the credential: a refused value may be a real token mistyped, or another secret.
        details: { reason: err.message, code: err.code, status: err.statusCode, credential: request.credential ?? 'none' },
      })
      .catch((e) => request.log.warn({ err: errorMessage(e) }, 'could not write the audit row of a refused request'));
  }
  app.decorate('auditRefusal', auditRefusal);

  const refusal = (err: unknown): err is AppError =>
    err instanceof AppError && (err.statusCode === 401 || err.statusCode === 403 || err.code === 'identity_provider_unavailable');

  app.addHook('onError', async (request, _reply, err) => {
    request.auditError = err.message;
    if (refusal(err)) await auditRefusal(request, err);
  });

  // Admin and write actions, with their outcome; refusals already have their row from onError. In onSend, so
  // the row is written before the answer leaves: a client that got its answer can read the row.
  app.addHook('onSend', async (request, reply) => {
    const spec = request.routeOptions.config?.audit;
    if (!spec || !audit || reply.statusCode === 401 || reply.statusCode === 403) return;
    const result = reply.statusCode < 400 ? 'ok' : reply.statusCode < 500 ? 'refused' : 'failed';
    if (spec.unlessOk && result === 'ok') return;
    const params = (request.params ?? {}) as Record<string, unknown>;
    const target = spec.target?.(request) ?? request.auditTarget ?? ((params.name ?? params.file) as string | undefined);
    await audit
      .record({
        actor: request.principal?.name ?? 'anonymous',
        action: spec.action,
        target: target ?? null,
        result,
        durationMs: Math.round(reply.elapsedTime),
        source: request.ip,
        details: { status: reply.statusCode, ...(result !== 'ok' && request.auditError ? { error: request.auditError } : {}) },
      })
      .catch((e) => request.log.warn({ err: errorMessage(e) }, 'could not write an audit row'));
  });

  await app.register(async (child) => sessionRoutes(child, verifyCredential));
}

const sessionBody = z.object({ token: z.string().min(1).max(MAX_JWT_BYTES).describe('an API token (pk_mcp_…) or a JWT from the identity provider') });
const sessionResponse = z.object({
  name: z.string(),
  scopes: z.array(z.enum(SCOPES)),
  instances: z.array(z.string()),
  expiresAt: z.string().nullable(),
});

/** Encapsulated so that the form parser it adds applies to these routes only. */
async function sessionRoutes(
  instance: FastifyInstance,
  verifyCredential: (request: FastifyRequest, reply: FastifyReply, value: string) => Promise<Principal>,
): Promise<void> {
  const app = instance.withTypeProvider<ZodTypeProvider>();
  if (!app.hasContentTypeParser('application/x-www-form-urlencoded')) {
    // A plain HTML login form posts this; a token is short, so the limit is small.
    app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: 2 * MAX_JWT_BYTES }, (_request, body, done) => {
      done(null, Object.fromEntries(new URLSearchParams(body as string)));
    });
  }

  app.post(
    '/auth/session',
    {
      config: { audit: { action: 'auth.session.create', target: (request) => request.principal?.name } },
      schema: {
        description: 'Exchange a token or an identity provider JWT for an HttpOnly session cookie (for browsers); JSON or form body.',
        body: sessionBody,
        response: { 200: sessionResponse },
      },
    },
    async (request, reply) => {
      const principal = await verifyCredential(request, reply, request.body.token);
      request.principal = principal;
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
