import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import getPort from 'get-port';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitUntil } from '../../scripts/stack/process.ts';
import { createTokenService } from '../../shared/auth/token.service.ts';
import { openTestStores, type TestStores } from '../helpers/context.ts';
import { spawnEntry, type Spawned } from '../helpers/processes.ts';

/**
 * Two real API processes behind a round-robin proxy (no sticky sessions): one
 * MCP client's session is opened on one replica and served by both, every
 * request alternating, and a DELETE on one ends it on both.
 */
describe('MCP Streamable HTTP across API replicas', () => {
  let t: TestStores;
  const apis: Spawned[] = [];
  const ports: number[] = [];
  let proxy: http.Server;
  let proxyUrl: string;
  /** Which replica each proxied request went to, with the answer's status. */
  const routed: Array<{ replica: number; method: string; status: number }> = [];
  let token: string;

  beforeAll(async () => {
    t = await openTestStores();
    const tokens = createTokenService(t.stores.postgres, { instances: t.config.instances });
    token = (await tokens.create({ name: 'scale-out', scopes: ['read', 'write'], instances: ['*'] })).token;
    for (let i = 0; i < 2; i++) {
      const port = await getPort({ host: '127.0.0.1' });
      ports.push(port);
      apis.push(
        spawnEntry('api/server.ts', {
          QUEUE_PREFIX: t.config.queuePrefix,
          DATABASE_SCHEMA: t.config.databaseSchema,
          CHROMA_COLLECTION_PREFIX: t.config.chromaCollectionPrefix,
          API_PORT: String(port),
          LOG_LEVEL: 'warn',
          LOG_PRETTY: 'false',
          SEMANTIC_MODEL: 'none',
        }),
      );
    }
    for (const [i, api] of apis.entries()) {
      await waitUntil(`api ${i}`, async () => {
        const res = await fetch(`http://127.0.0.1:${ports[i]}/health`);
        if (!res.ok) throw new Error(`status ${res.status}`);
      }, 60_000, () => api.child.exitCode === null).catch((err) => {
        throw new Error(`${(err as Error).message}\n${api.output()}`);
      });
    }
    // A plain round-robin HTTP proxy: request n goes to replica n mod 2, whatever its session.
    let next = 0;
    proxy = http.createServer((req, res) => {
      const replica = next++ % 2;
      const upstream = http.request(
        { host: '127.0.0.1', port: ports[replica], method: req.method, path: req.url, headers: req.headers },
        (up) => {
          routed.push({ replica, method: req.method ?? '', status: up.statusCode ?? 0 });
          res.writeHead(up.statusCode ?? 502, up.headers);
          up.pipe(res);
        },
      );
      upstream.on('error', (err) => {
        res.writeHead(502).end(String(err));
      });
      req.pipe(upstream);
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}/mcp`;
  });

  afterAll(async () => {
    // The replicas first, each whatever else fails: a replica left running would outlive the test run.
    await Promise.allSettled(apis.map((api) => api.stop('SIGTERM')));
    proxy?.closeAllConnections();
    await new Promise((r) => proxy?.close(r));
    await t?.cleanup();
  });

  it('serves one session from both replicas, and a DELETE on one ends it on both', async () => {
    const transport = new StreamableHTTPClientTransport(new URL(proxyUrl), { requestInit: { headers: { authorization: `Bearer ${token}` } } });
    const client = new Client({ name: 'scale-out-test', version: '1' });
    await client.connect(transport);
    const sessionId = transport.sessionId!;
    expect(sessionId).toMatch(/^[0-9a-f-]{36}$/);

    for (let i = 0; i < 6; i++) {
      const tools = await client.listTools();
      expect(tools.tools.map((x) => x.name)).toContain('semantic_search');
      const repos = await client.callTool({ name: 'list_repositories', arguments: {} });
      expect(repos.isError ?? false).toBe(false);
    }
    // A tool error from the tool itself (nothing indexed yet) is an answer; a lost session would throw instead.
    const status = await client.callTool({ name: 'get_job_status', arguments: { job_id: 'no-such-job' } });
    expect(JSON.stringify(status.content)).toMatch(/no-such-job|not found/i);

    // Every request, the initialize included, answered 2xx, and both replicas served the session.
    expect(routed.filter((r) => r.status >= 400)).toEqual([]);
    const posts = routed.filter((r) => r.method === 'POST');
    expect(new Set(posts.map((r) => r.replica))).toEqual(new Set([0, 1]));
    expect(posts.length).toBeGreaterThanOrEqual(14);

    await transport.terminateSession();
    await client.close();
    // Closed for both replicas, whichever took the DELETE.
    for (const port of ports) {
      const res = await fetch(`http://127.0.0.1:${port}/mcp`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${token}`,
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
          'mcp-session-id': sessionId,
          'mcp-protocol-version': '2025-06-18',
        },
        body: JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'tools/list', params: {} }),
      });
      expect(res.status).toBe(404);
    }
  });

  it("a session is only ever served to the token that opened it, on any replica", async () => {
    const tokens = createTokenService(t.stores.postgres, { instances: t.config.instances });
    const other = (await tokens.create({ name: 'scale-out-other', scopes: ['read'], instances: ['*'] })).token;
    const transport = new StreamableHTTPClientTransport(new URL(proxyUrl), { requestInit: { headers: { authorization: `Bearer ${token}` } } });
    const client = new Client({ name: 'owner', version: '1' });
    await client.connect(transport);
    try {
      for (const port of ports) {
        const res = await fetch(`http://127.0.0.1:${port}/mcp`, {
          method: 'POST',
          headers: {
            authorization: `Bearer ${other}`,
            'content-type': 'application/json',
            accept: 'application/json, text/event-stream',
            'mcp-session-id': transport.sessionId!,
            'mcp-protocol-version': '2025-06-18',
          },
          body: JSON.stringify({ jsonrpc: '2.0', id: 3, method: 'tools/list', params: {} }),
        });
        expect(res.status).toBe(404);
      }
      // The owner still has it.
      expect((await client.listTools()).tools.length).toBeGreaterThan(0);
    } finally {
      await transport.terminateSession();
      await client.close();
    }
  });
});
