import type { AddressInfo } from 'node:net';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import Fastify, { type FastifyInstance } from 'fastify';
import { serializerCompiler, validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerAuth } from '../../api/plugins/auth.plugin.ts';
import { registerErrorHandler } from '../../api/plugins/error-handler.ts';
import { mcpHttpRoutes } from '../../mcp/http.routes.ts';
import { createTokenService } from '../../shared/auth/token.service.ts';
import { createGraphQueryService } from '../../shared/graph/graph-query.service.ts';
import { createJobStatusService } from '../../shared/queue/job-status.service.ts';
import { openTestPlatform, type TestPlatform } from '../helpers/platform.ts';

/**
 * The shared session records themselves, with two replicas in one process on
 * the real Redis: what a record holds, that it expires with the idle timeout,
 * and that a replica with no room left answers 503 for a session it would have
 * to adopt rather than claiming the session does not exist.
 */
describe('MCP sessions shared through Redis', () => {
  let t: TestPlatform;
  let token: string;
  const apps: FastifyInstance[] = [];
  const bases: string[] = [];

  async function replica(maxSessions: number, sessionIdleMs = 60_000): Promise<string> {
    const app = Fastify().withTypeProvider<ZodTypeProvider>();
    app.setValidatorCompiler(validatorCompiler);
    app.setSerializerCompiler(serializerCompiler);
    registerErrorHandler(app);
    await registerAuth(app, { tokens: createTokenService(t.platform.stores.postgres, { instances: t.config.instances }) });
    await app.register(mcpHttpRoutes, {
      platform: t.platform,
      search: t.search,
      graph: createGraphQueryService(t.platform),
      repos: t.repos,
      jobs: createJobStatusService(t.platform),
      allowedOrigins: [],
      maxSessions,
      sessionIdleMs,
    });
    await app.listen({ host: '127.0.0.1', port: 0 });
    apps.push(app);
    return `http://127.0.0.1:${(app.server.address() as AddressInfo).port}/mcp`;
  }

  beforeAll(async () => {
    t = await openTestPlatform();
    token = (await createTokenService(t.platform.stores.postgres, { instances: t.config.instances }).create({ name: 'sessions', scopes: ['read'], instances: ['*'] })).token;
    bases.push(await replica(5, 2_000), await replica(1));
  });
  afterAll(async () => {
    for (const app of apps) await app.close();
    await t?.cleanup();
  });

  const post = (url: string, sessionId: string) =>
    fetch(url, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-06-18' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/list', params: {} }),
    });

  it("records the token and the client's initialize under the queue prefix, with the idle timeout as TTL", async () => {
    const transport = new StreamableHTTPClientTransport(new URL(bases[0]!), { requestInit: { headers: { authorization: `Bearer ${token}` } } });
    const client = new Client({ name: 'recorded-client', version: '4.2' });
    await client.connect(transport);
    const key = `${t.config.queuePrefix}:mcp-session:${transport.sessionId}`;
    const record = JSON.parse((await t.platform.stores.redis.client.get(key))!) as { tokenId: number; principalName: string; init: { clientInfo: { name: string; version: string } } };
    expect(record.principalName).toBe('sessions');
    expect(record.init.clientInfo).toEqual({ name: 'recorded-client', version: '4.2' });
    const ttl = await t.platform.stores.redis.client.pttl(key);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(2_000);
    await client.close();
  });

  it('answers 503 (not 404) when this replica has no room to adopt a session opened elsewhere', async () => {
    const clients: Client[] = [];
    // Replica 1 holds one session at most: fill it.
    const own = new StreamableHTTPClientTransport(new URL(bases[1]!), { requestInit: { headers: { authorization: `Bearer ${token}` } } });
    clients.push(new Client({ name: 'own', version: '1' }));
    await clients[0]!.connect(own);
    // A session opened on replica 0, then sent to the full replica 1.
    const elsewhere = new StreamableHTTPClientTransport(new URL(bases[0]!), { requestInit: { headers: { authorization: `Bearer ${token}` } } });
    clients.push(new Client({ name: 'elsewhere', version: '1' }));
    await clients[1]!.connect(elsewhere);
    const res = await post(bases[1]!, elsewhere.sessionId!);
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('60');
    expect(((await res.json()) as { error: { message: string } }).error.message).toContain('too many open MCP sessions on this replica (1)');
    // The replica that holds it serves it.
    expect((await post(bases[0]!, elsewhere.sessionId!)).status).toBe(200);
    for (const c of clients) await c.close();
  });

  it('a session left idle past its timeout is gone for every replica', async () => {
    const transport = new StreamableHTTPClientTransport(new URL(bases[0]!), { requestInit: { headers: { authorization: `Bearer ${token}` } } });
    const client = new Client({ name: 'idle', version: '1' });
    await client.connect(transport);
    const id = transport.sessionId!;
    await new Promise((r) => setTimeout(r, 2_500)); // replica 0's idle timeout is 2 s
    expect(await t.platform.stores.redis.client.exists(`${t.config.queuePrefix}:mcp-session:${id}`)).toBe(0);
    expect((await post(bases[0]!, id)).status).toBe(404);
    await client.close().catch(() => undefined);
  });
});
