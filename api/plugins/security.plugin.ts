import { createHash } from 'node:crypto';
import cors from '@fastify/cors';
import helmet from '@fastify/helmet';
import rateLimit from '@fastify/rate-limit';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Redis } from 'ioredis';
import { AppError } from '../../shared/errors.ts';

export interface SecurityOptions {
  corsOrigins: string[];
  rateLimitPerMinute: number;
  rateLimitAnonymousPerMinute: number;
  /** Shared counters, so limits hold across API replicas. */
  redis: Redis;
  queuePrefix: string;
}

/**
 * A cookie value as @fastify/cookie decodes it: a value that is not valid
 * percent-encoding (`%ZZ`, a cut UTF-8 sequence) is kept as sent. It throws in
 * decodeURIComponent, and the rate limit runs on every request, /health too.
 */
function decodeCookie(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

/** The rate-limit key: a hash of the bearer token when one is sent, else the client address. */
function limitKey(request: FastifyRequest): string {
  const auth = request.headers.authorization;
  if (auth?.startsWith('Bearer ')) return `tok:${createHash('sha256').update(auth.slice(7).trim()).digest('hex').slice(0, 32)}`;
  const cookie = request.headers.cookie?.match(/(?:^|;\s*)pk_session=([^;]+)/)?.[1];
  if (cookie) return `tok:${createHash('sha256').update(decodeCookie(cookie)).digest('hex').slice(0, 32)}`;
  return `ip:${request.ip}`;
}

/** Security headers, CORS allow-list and rate limits per token and per IP (429 with Retry-After). */
export async function registerSecurity(app: FastifyInstance, options: SecurityOptions): Promise<void> {
  await app.register(helmet, {
    // Swagger UI and Bull Board ship inline scripts and styles; everything stays same-origin.
    contentSecurityPolicy: {
      directives: {
        defaultSrc: ["'self'"],
        scriptSrc: ["'self'", "'unsafe-inline'"],
        styleSrc: ["'self'", "'unsafe-inline'"],
        imgSrc: ["'self'", 'data:'],
        connectSrc: ["'self'"],
        frameAncestors: ["'none'"],
      },
    },
    crossOriginEmbedderPolicy: false,
  });
  await app.register(cors, {
    // Only listed origins; with none listed, browsers on other origins get no CORS grant at all.
    origin: options.corsOrigins.length > 0 ? options.corsOrigins : false,
    credentials: true,
    methods: ['GET', 'POST', 'DELETE', 'OPTIONS'],
    allowedHeaders: ['Authorization', 'Content-Type', 'Mcp-Session-Id', 'Mcp-Protocol-Version', 'Last-Event-ID'],
    exposedHeaders: ['Mcp-Session-Id', 'Retry-After'],
  });
  await app.register(rateLimit, {
    // Not per route (the plugin would append its hook after a route's own onRequest, where authentication
    // now runs): one app-level hook below counts every request, refused ones included, before anything else.
    global: false,
    timeWindow: '1 minute',
    max: (_request, key) => (key.startsWith('tok:') ? options.rateLimitPerMinute : options.rateLimitAnonymousPerMinute),
    keyGenerator: limitKey,
    redis: options.redis,
    nameSpace: `${options.queuePrefix}:ratelimit:`,
    skipOnError: true,
    allowList: (request) => request.url === '/health',
    // Thrown into the API's error handler, which answers in the one error shape.
    errorResponseBuilder: (_request, context) =>
      new AppError(429, 'rate_limited', `too many requests: limit is ${context.max} per ${context.after}; retry in ${Math.ceil(context.ttl / 1000)} s`),
  });
  const limit = app.rateLimit();
  app.addHook('onRequest', async (request, reply) => {
    // A route with a limit of its own (webhooks) is counted by that one, in its route-level hook.
    if (request.routeOptions.config?.rateLimit) return;
    await limit.call(app, request, reply);
  });
}
