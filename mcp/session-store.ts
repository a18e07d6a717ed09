import type { Redis } from 'ioredis';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { z } from 'zod';

/**
 * MCP Streamable HTTP sessions shared by every API replica through Redis, so a
 * load balancer may send each request of a session to any replica (no sticky
 * sessions). A session is the token that opened it and the client's
 * `initialize` parameters; a replica that meets a session it does not hold
 * rebuilds its MCP server from them ("adopts" it). The record lives as long as
 * the session is used (its TTL is the idle timeout, renewed on every request);
 * DELETE removes it for every replica.
 *
 * What stays per replica: a response stream (a POST's answer, progress
 * notifications on it) runs on the replica that took the POST, and the
 * optional GET stream on the replica that took the GET. This server sends
 * nothing outside a request's own stream, so nothing is lost when the GET
 * lands elsewhere; a response stream cut mid-way is not resumed (no event
 * store): the client sends the request again.
 */

const recordSchema = z.object({
  tokenId: z.number().int(),
  principalName: z.string(),
  /** The client's initialize params (protocolVersion, capabilities, clientInfo), replayed on adoption. */
  init: z.record(z.string(), z.unknown()),
});
export type McpSessionRecord = z.infer<typeof recordSchema>;

export interface McpSessionStore {
  save(id: string, record: McpSessionRecord): Promise<void>;
  get(id: string): Promise<McpSessionRecord | undefined>;
  /** Renews the record's TTL; false when it is gone (closed by DELETE on another replica, or expired). */
  touch(id: string): Promise<boolean>;
  remove(id: string): Promise<void>;
}

export function createRedisSessionStore(redis: Redis, prefix: string, ttlMs: number): McpSessionStore {
  // Inside the queue prefix, so a {hash tag} there keeps these keys in the same slot family on a cluster too.
  const key = (id: string) => `${prefix}:mcp-session:${id}`;
  return {
    async save(id, record) {
      await redis.set(key(id), JSON.stringify(record), 'PX', ttlMs);
    },
    async get(id) {
      const raw = await redis.get(key(id));
      if (raw === null) return undefined;
      const parsed = recordSchema.safeParse(JSON.parse(raw));
      return parsed.success ? parsed.data : undefined;
    },
    async touch(id) {
      return (await redis.pexpire(key(id), ttlMs)) === 1;
    },
    async remove(id) {
      await redis.del(key(id));
    },
  };
}

interface WebStandardTransport {
  handleRequest(req: Request, options?: { parsedBody?: unknown }): Promise<Response>;
}

/**
 * Puts a fresh transport (already connected to its MCP server) into the state
 * of an existing session: it replays the client's `initialize` through the
 * transport, which takes `id` from its generator and lets the server record
 * the client's protocol version and capabilities, exactly as on the replica
 * that opened the session. The answer is read and dropped (the client had it
 * long ago).
 */
export async function replayInitialize(transport: StreamableHTTPServerTransport, init: Record<string, unknown>): Promise<void> {
  // The Node transport wraps the SDK's web-standard one, whose handleRequest takes a Request we can build here.
  const inner = (transport as unknown as { _webStandardTransport?: WebStandardTransport })._webStandardTransport;
  if (!inner || typeof inner.handleRequest !== 'function') {
    throw new Error('this MCP SDK version has no web-standard transport inside StreamableHTTPServerTransport: shared MCP sessions need an update of mcp/session-store.ts');
  }
  const body = { jsonrpc: '2.0', id: '__pk_mcp_adopt__', method: 'initialize', params: init };
  const response = await inner.handleRequest(
    new Request('http://replica.internal/mcp', {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify(body),
    }),
    { parsedBody: body },
  );
  const text = await response.text();
  if (response.status !== 200 || !text.includes('"result"')) throw new Error(`replaying initialize failed (${response.status}): ${text.slice(0, 200)}`);
}
