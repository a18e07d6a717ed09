import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGitFixture, type GitFixture } from '../helpers/git-fixture.ts';
import { connectMcpClient } from '../helpers/mcp-client.ts';
import { startFakeOpenAI, type FakeOpenAI } from '../helpers/fake-openai-server.ts';
import { openTestPlatform, waitForJob, type TestPlatform } from '../helpers/platform.ts';
import { PLANTED, PLANTED_SOURCE } from '../helpers/planted-secrets.ts';

/**
 * Keys committed in source files never leave with the code: with an external embedding API configured
 * (the local stand-in for OpenAI), an index run sends, stores and answers markers in their place.
 */
describe('secrets in indexed code', () => {
  let t: TestPlatform;
  let openai: FakeOpenAI;
  let fixture: GitFixture;
  let indexed: { secretsRedacted?: Record<string, number>; commit: string };
  const values = Object.values(PLANTED);
  const leaked = (text: string) => values.filter((v) => text.includes(v));

  beforeAll(async () => {
    openai = await startFakeOpenAI({ apiKey: 'sk-test', defaultDimensions: 32 });
    t = await openTestPlatform({
      embedding: { provider: 'openai', openaiApiKey: 'sk-test', openaiBaseUrl: openai.url, model: 'text-embedding-3-small', dimensions: 32, concurrency: 2, maxRetries: 1, localDimensions: 384 },
    });
    fixture = createGitFixture();
    fixture.write({
      'src/config.ts': PLANTED_SOURCE,
      'src/clean.ts': 'export function addNumbers(a: number, b: number): number {\n  return a + b;\n}\n',
    });
    fixture.commit('config with keys in it');
    await t.startWorkers();
    const { jobId } = await t.repos.addAndIndex({ source: fixture.dir, name: 'leaky' });
    indexed = (await waitForJob(t.platform.queues.queues.index, jobId)) as typeof indexed;
  });

  afterAll(async () => {
    await t?.cleanup();
    await openai?.close();
    fixture?.cleanup();
  });

  it('counts what the run redacted, by rule, never the values', () => {
    expect(indexed.secretsRedacted).toEqual({ aws: 1, github: 1, slack: 1, 'database-connection-string': 1, privatekey: 1, 'generic-api-key': 2 });
    expect(leaked(JSON.stringify(indexed))).toEqual([]);
  });

  it('no planted secret reached the embedding API', () => {
    const sent = openai.requests.flatMap((r) => r.inputs);
    expect(sent.some((s) => s.includes('[REDACTED:github]'))).toBe(true);
    expect(leaked(sent.join('\n'))).toEqual([]);
  });

  it("no planted secret is in the stores' text", async () => {
    const { rows } = await t.platform.stores.postgres.pool.query<{ content: string; symbol: string | null }>('SELECT content, symbol FROM chunks');
    expect(rows.length).toBeGreaterThan(0);
    expect(leaked(rows.map((r) => `${r.content}\n${r.symbol ?? ''}`).join('\n'))).toEqual([]);
    expect(rows.some((r) => r.content.includes('[REDACTED:privatekey]'))).toBe(true);
    // Chroma holds vectors with metadata only; nothing of the text may be in it either.
    const collections = (await t.platform.stores.chroma.client.listCollections()).filter((c) => c.name.startsWith(t.config.chromaCollectionPrefix));
    expect(collections.length).toBeGreaterThan(0);
    for (const c of collections) {
      const got = await c.get({ include: ['metadatas', 'documents'] as never });
      expect(leaked(JSON.stringify(got))).toEqual([]);
    }
  });

  it('no planted secret is in a search answer or a get_file answer (read from the git mirror)', async () => {
    for (const query of ['signingKey private key', 'github slack database config', 'apiToken', PLANTED.github]) {
      const { hits } = await t.search.search({ query, limit: 10 });
      expect(leaked(JSON.stringify(hits))).toEqual([]);
    }
    const { hits } = await t.search.search({ query: 'config github slack', limit: 5 });
    expect(hits.map((h) => h.path)).toContain('src/config.ts');

    const mcp = await connectMcpClient(t);
    try {
      const r = (await mcp.client.callTool({ name: 'get_file', arguments: { repository: 'leaky', path: 'src/config.ts' } })) as {
        isError?: boolean;
        content: Array<{ text: string }>;
        structuredContent?: { content: string; endLine: number };
      };
      expect(r.isError, r.content[0]?.text).toBeFalsy();
      expect(leaked(JSON.stringify(r))).toEqual([]);
      expect(r.content[0]!.text).toContain('github: "[REDACTED:github]",');
      // Line numbers hold: the private key block keeps its lines.
      expect(r.structuredContent!.content.split('\n')[10]).toBe('const apiToken = "[REDACTED:generic-api-key]";');

      // A range that starts inside the key block still shows none of it.
      const part = (await mcp.client.callTool({ name: 'get_file', arguments: { repository: 'leaky', path: 'src/config.ts', start_line: 8, end_line: 9 } })) as { content: Array<{ text: string }> };
      expect(leaked(JSON.stringify(part))).toEqual([]);
    } finally {
      await mcp.close();
    }
  });
});
