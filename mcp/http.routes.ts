import { randomUUID } from 'node:crypto';
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { SSEServerTransport } from '@modelcontextprotocol/sdk/server/sse.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { validatorCompiler } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { AuthHook } from '../api/plugins/auth.plugin.ts';
import { AppError } from '../shared/errors.ts';
import type { GraphQueryService } from '../shared/graph/graph-query.service.ts';
import type { RepositoryService } from '../shared/indexing/repository.service.ts';
import type { Platform } from '../shared/platform.ts';
import type { JobStatusService } from '../shared/queue/job-status.service.ts';
import type { SearchService } from '../shared/search/hybrid-search.ts';
import { createMcpServer, type McpDeps } from './server.ts';
import { createRedisSessionStore, replayInitialize, type McpSessionStore } from './session-store.ts';

export interface McpHttpOptions {
  platform: Platform;
  search: SearchService;
  graph: GraphQueryService;
  repos: RepositoryService;
  jobs: JobStatusService;
  /** Browser origins that may call the MCP endpoints; requests without an Origin header (non-browser clients) always may. */
  allowedOrigins: string[];
  /** Open sessions (Streamable HTTP and SSE together) before new ones get 503. */
  maxSessions?: number;
  /** A Streamable HTTP session unused this long is closed: clients that vanish never send DELETE. */
  sessionIdleMs?: number;
  /** Where Streamable HTTP sessions are shared between API replicas (default: Redis, under the queue prefix). */
  sessionStore?: McpSessionStore;
}

export const DEFAULT_MAX_SESSIONS = 100;
export const DEFAULT_SESSION_IDLE_MS = 30 * 60_000;
/** Proxies commonly drop a response silent for 30-60 s; a comment line keeps the legacy SSE stream open. */
const SSE_KEEP_ALIVE_MS = 25_000;

interface Session {
  kind: 'streamable' | 'sse';
  transport: StreamableHTTPServerTransport | SSEServerTransport;
  server: McpServer;
  /** The token that opened the session: the only one that may use it. */
  tokenId: number;
  principalName: string;
  lastSeen: number;
}

/** JSON-RPC error body, as MCP clients expect from the protocol endpoints (the SDK answers the same way). */
function rpcError(reply: FastifyReply, status: number, message: string, code = -32000) {
  return reply.status(status).send({ jsonrpc: '2.0', error: { code, message }, id: null });
}

/** Headers earlier hooks set on the Fastify reply (CORS, rate limit) would be lost once the raw response is handed over. */
function hijack(reply: FastifyReply): void {
  for (const [name, value] of Object.entries(reply.getHeaders())) {
    if (value !== undefined && !reply.raw.headersSent) reply.raw.setHeader(name, value);
  }
  reply.hijack();
}

/**
 * Hands the raw response to an SDK transport. Once hijacked, Fastify's error
 * handler can no longer answer, so a transport that throws is answered here.
 */
async function handOver(request: FastifyRequest, reply: FastifyReply, handle: () => Promise<void>): Promise<FastifyReply> {
  hijack(reply);
  try {
    await handle();
  } catch (err) {
    request.log.error({ err }, 'mcp transport failed');
    const res = reply.raw;
    if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' });
    if (!res.writableEnded) res.end(JSON.stringify({ jsonrpc: '2.0', error: { code: -32603, message: 'Internal error' }, id: null }));
  }
  return reply;
}

/**
 * MCP over HTTP on the API server: Streamable HTTP at /mcp (POST, GET,
 * DELETE; sessions keyed by Mcp-Session-Id) and the legacy SSE transport at
 * GET /sse + POST /messages?sessionId=…. Every request needs a token with the
 * read scope; each session gets its own MCP server bound to the token that
 * opened it, which scopes every tool to that token's instances.
 */
export const mcpHttpRoutes: FastifyPluginAsync<McpHttpOptions> = async (app, options) => {
  const { allowedOrigins } = options;
  const maxSessions = options.maxSessions ?? DEFAULT_MAX_SESSIONS;
  const idleMs = options.sessionIdleMs ?? DEFAULT_SESSION_IDLE_MS;
  const sessions = new Map<string, Session>();
  // Shared by every replica: a session opened on one is served by any other (no sticky sessions).
  const shared =
    options.sessionStore ?? createRedisSessionStore(options.platform.stores.redis.client, options.platform.config.queuePrefix, idleMs);
  // As onRequest (the auth plugin's preferred place): a request without a valid token is refused before its body is read.
  const read: AuthHook = app.requireScope('read');
  // Defence in depth: the SDK transports check Origin again; the hook below answers first, before auth, on every route here.
  const transportGuard = { allowedOrigins, enableDnsRebindingProtection: allowedOrigins.length > 0 };
  // The schemas below are zod: compiled here (encapsulated) so the plugin does not depend on what its parent app set.
  app.setValidatorCompiler(validatorCompiler);

  /**
   * DNS-rebinding and cross-site protection: a page on another origin (or one
   * rebinding its name to this host) must not reach the tools. Browsers always
   * send Origin on such requests; agents and CLIs send none.
   */
  app.addHook('onRequest', async (request) => {
    const origin = request.headers.origin;
    if (origin !== undefined && !allowedOrigins.includes(origin)) {
      throw new AppError(403, 'forbidden_origin', `origin ${origin} may not use the MCP endpoints (allowed: ${allowedOrigins.join(', ') || 'none'}; set CORS_ORIGINS)`);
    }
  });

  function deps(request: FastifyRequest): McpDeps {
    const p = request.principal!;
    return {
      platform: options.platform,
      search: options.search,
      graph: options.graph,
      repos: options.repos,
      jobs: options.jobs,
      principal: { name: p.name, scopes: p.scopes, instances: p.instances },
      logger: app.log,
    };
  }

  /** Forgets a session and closes its server (which closes the transport); safe to call twice. */
  async function drop(id: string): Promise<void> {
    const session = sessions.get(id);
    if (!session) return;
    sessions.delete(id);
    await session.server.close().catch((err) => app.log.warn({ err, sessionId: id }, 'closing an mcp session failed'));
    app.log.debug({ sessionId: id, kind: session.kind, token: session.principalName }, 'mcp session closed');
  }

  /** The caller's own session of this kind; another token's session does not exist for them. */
  function sessionOf(request: FastifyRequest, id: string | undefined, kind: Session['kind']): Session | undefined {
    const session = id ? sessions.get(id) : undefined;
    if (!session || session.kind !== kind || session.tokenId !== request.principal!.tokenId) return undefined;
    session.lastSeen = Date.now();
    return session;
  }

  /**
   * The caller's Streamable HTTP session, wherever it was opened: one held here is checked against the shared
   * record (gone means another replica closed it), one held elsewhere is adopted from it.
   */
  async function streamableSession(request: FastifyRequest, id: string): Promise<Session | 'full' | undefined> {
    const local = sessionOf(request, id, 'streamable');
    if (local) {
      if (await shared.touch(id)) return local;
      await drop(id);
      return undefined;
    }
    if (sessions.has(id)) return undefined; // another token's, or an SSE session
    const record = await shared.get(id);
    if (!record || record.tokenId !== request.principal!.tokenId) return undefined;
    if (full()) return 'full';
    const server = createMcpServer(deps(request));
    const transport: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => id,
      onsessionclosed: async (sessionId) => {
        await shared.remove(sessionId);
        void drop(sessionId);
      },
      ...transportGuard,
    });
    transport.onclose = () => void drop(id);
    await server.connect(transport);
    await replayInitialize(transport, record.init);
    const session: Session = { kind: 'streamable', transport, server, tokenId: record.tokenId, principalName: record.principalName, lastSeen: Date.now() };
    sessions.set(id, session);
    await shared.touch(id);
    app.log.debug({ sessionId: id, token: record.principalName }, 'mcp session adopted from another replica');
    return session;
  }

  function full(): boolean {
    return sessions.size >= maxSessions;
  }

  const sweep = setInterval(() => {
    const cutoff = Date.now() - idleMs;
    for (const [id, s] of sessions) if (s.kind === 'streamable' && s.lastSeen < cutoff) void drop(id);
  }, Math.min(60_000, idleMs)).unref();

  // preClose, not onClose: open SSE streams would keep the HTTP server from closing at all.
  app.addHook('preClose', async () => {
    clearInterval(sweep);
    await Promise.all([...sessions.keys()].map(drop));
  });

  const sessionHeader = (request: FastifyRequest) => {
    const value = request.headers['mcp-session-id'];
    return Array.isArray(value) ? value[0] : value;
  };

  const streamable = { tags: ['mcp'], security: [{ bearer: [] }] };
  // The MCP server checks tool arguments itself (NUL characters among them) and answers in JSON-RPC, which clients read.
  const config = { bodyCheckedByHandler: true };

  app.post(
    '/mcp',
    { onRequest: read, config, schema: { ...streamable, summary: 'MCP Streamable HTTP: JSON-RPC messages (initialize opens a session)' } },
    async (request, reply) => {
      const id = sessionHeader(request);
      if (id) {
        const session = await streamableSession(request, id);
        if (session === 'full') return rpcError(reply.header('Retry-After', '60'), 503, `too many open MCP sessions on this replica (${maxSessions})`);
        if (!session) return rpcError(reply, 404, 'Session not found: start a new session with initialize', -32001);
        const transport = session.transport as StreamableHTTPServerTransport;
        return handOver(request, reply, () => transport.handleRequest(request.raw, reply.raw, request.body));
      }
      if (!isInitializeRequest(request.body)) {
        return rpcError(reply, 400, 'Bad Request: send the Mcp-Session-Id header, or initialize to open a session');
      }
      if (full()) return rpcError(reply.header('Retry-After', '60'), 503, `too many open MCP sessions (${maxSessions}): close unused ones with DELETE /mcp`);

      const server = createMcpServer(deps(request));
      const principal = request.principal!;
      const transport: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        onsessioninitialized: async (sessionId) => {
          sessions.set(sessionId, { kind: 'streamable', transport, server, tokenId: principal.tokenId, principalName: principal.name, lastSeen: Date.now() });
          const init = (request.body as { params?: Record<string, unknown> }).params ?? {};
          await shared.save(sessionId, { tokenId: principal.tokenId, principalName: principal.name, init });
          app.log.debug({ sessionId, token: principal.name }, 'mcp session opened');
        },
        onsessionclosed: async (sessionId) => {
          await shared.remove(sessionId);
          void drop(sessionId);
        },
        ...transportGuard,
      });
      transport.onclose = () => {
        if (transport.sessionId) void drop(transport.sessionId);
      };
      await server.connect(transport);
      await handOver(request, reply, () => transport.handleRequest(request.raw, reply.raw, request.body));
      // An initialize the transport rejected never got a session: nothing else will close this server.
      if (!transport.sessionId || !sessions.has(transport.sessionId)) await server.close().catch(() => undefined);
      return reply;
    },
  );

  for (const method of ['GET', 'DELETE'] as const) {
    app.route({
      method,
      url: '/mcp',
      onRequest: read,
      config,
      schema: { ...streamable, summary: method === 'GET' ? 'MCP Streamable HTTP: server-to-client event stream of a session' : 'MCP Streamable HTTP: end a session' },
      handler: async (request, reply) => {
        const id = sessionHeader(request);
        if (!id) return rpcError(reply, 400, 'Bad Request: Mcp-Session-Id header required');
        const session = await streamableSession(request, id);
        if (session === 'full') return rpcError(reply.header('Retry-After', '60'), 503, `too many open MCP sessions on this replica (${maxSessions})`);
        if (!session) return rpcError(reply, 404, 'Session not found', -32001);
        const transport = session.transport as StreamableHTTPServerTransport;
        return handOver(request, reply, () => transport.handleRequest(request.raw, reply.raw));
      },
    });
  }

  app.get('/sse', { onRequest: read, config, schema: { ...streamable, summary: 'MCP over SSE (legacy transport): opens the event stream of a session' } }, async (request, reply) => {
    if (full()) {
      return reply.header('Retry-After', '60').status(503).send({ error: 'too_many_sessions', message: `too many open MCP sessions (${maxSessions})` });
    }
    const principal = request.principal!;
    hijack(reply);
    // Where the client posts its messages, from the server root: the plugin may be mounted under a prefix.
    const transport = new SSEServerTransport(`${app.prefix}/messages`, reply.raw, transportGuard);
    const server = createMcpServer(deps(request));
    const id = transport.sessionId;
    sessions.set(id, { kind: 'sse', transport, server, tokenId: principal.tokenId, principalName: principal.name, lastSeen: Date.now() });
    const keepAlive = setInterval(() => {
      if (!reply.raw.writableEnded) reply.raw.write(': keep-alive\n\n');
    }, SSE_KEEP_ALIVE_MS).unref();
    transport.onclose = () => {
      clearInterval(keepAlive);
      void drop(id);
    };
    try {
      await server.connect(transport);
    } catch (err) {
      app.log.warn({ err }, 'mcp sse session failed to start');
      clearInterval(keepAlive);
      await drop(id);
      if (!reply.raw.writableEnded) reply.raw.end();
    }
    return reply;
  });

  app.post(
    '/messages',
    {
      onRequest: read,
      config,
      schema: {
        ...streamable,
        summary: 'MCP over SSE (legacy transport): a JSON-RPC message for a session',
        querystring: z.object({ sessionId: z.string().min(1).max(100).describe('the session id the /sse stream announced') }),
      },
    },
    async (request, reply) => {
      const { sessionId } = request.query as { sessionId: string };
      const session = sessionOf(request, sessionId, 'sse');
      if (!session) return reply.status(404).send({ error: 'session_not_found', message: `no SSE session ${sessionId}: open one with GET /sse` });
      const transport = session.transport as SSEServerTransport;
      return handOver(request, reply, () => transport.handlePostMessage(request.raw, reply.raw, request.body));
    },
  );
};
