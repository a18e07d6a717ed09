import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import path from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import Fastify, { type FastifyInstance } from 'fastify';
import { serializerCompiler, validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerAuth } from '../../api/plugins/auth.plugin.ts';
import { registerErrorHandler } from '../../api/plugins/error-handler.ts';
import { mcpHttpRoutes } from '../../mcp/http.routes.ts';
import { createMcpServer, TOOL_NAMES } from '../../mcp/server.ts';
import { warmUp } from '../../mcp/warm-up.ts';
import { PROJECT_ROOT, tsNodeArgs } from '../../scripts/project.ts';
import { createTokenService } from '../../shared/auth/token.service.ts';
import { createGraphQueryService } from '../../shared/graph/graph-query.service.ts';
import { createJobStatusService } from '../../shared/queue/job-status.service.ts';
import { startFakeOpenAI } from '../helpers/fake-openai-server.ts';
import { createGitFixture, type GitFixture } from '../helpers/git-fixture.ts';
import { silentLogger } from '../helpers/context.ts';
import { openTestPlatform, waitForJob, type TestPlatform } from '../helpers/platform.ts';

const MATH_TS = `export function add(a: number, b: number): number {
  return a + b;
}

export function total(values: number[]): number {
  return values.reduce((sum, v) => add(sum, v), 0);
}
`;
const REPORT_TS = `import { total } from './math';

export function renderReport(values: number[]): string {
  return \`total: \${total(values)}\`;
}
`;
const PY_SETTINGS = `import json


def parse_settings(path):
    """Reads the settings file and returns a dict."""
    with open(path) as handle:
        return json.load(handle)


def merge_settings(base, override):
    result = dict(base)
    result.update(override)
    return result
`;
/** Longer than one get_file answer (400 lines). */
const LONG_TXT = Array.from({ length: 500 }, (_, i) => `line ${i + 1} of the long notes`).join('\n') + '\n';

const ALLOWED_ORIGIN = 'http://allowed.example';

type ToolResult = CallToolResult & { structuredContent?: Record<string, any> };
const textOf = (r: ToolResult) => r.content.map((c) => (c.type === 'text' ? c.text : '')).join('\n');

let t: TestPlatform;
let repo: GitFixture;
let firstJobId = '';

beforeAll(async () => {
  t = await openTestPlatform();
  await t.startWorkers();
  repo = createGitFixture();
  repo.write({ 'src/math.ts': MATH_TS, 'src/report.ts': REPORT_TS, 'tools/settings.py': PY_SETTINGS, 'notes/long.txt': LONG_TXT });
  repo.commit('fixture');
  await t.repos.add({ source: repo.dir, name: 'billing' });
  const { jobId } = await t.repos.requestIndex('billing');
  firstJobId = jobId;
  await waitForJob(t.platform.queues.queues.index, jobId);
});

afterAll(async () => {
  await t?.cleanup();
  repo?.cleanup();
});

/** The isolated stores of this test file, for a child process (store URLs come from .data/stack.json or the environment). */
function childEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env[k] = v;
  return {
    ...env,
    QUEUE_PREFIX: t.config.queuePrefix,
    DATABASE_SCHEMA: t.config.databaseSchema,
    CHROMA_COLLECTION_PREFIX: t.config.chromaCollectionPrefix,
    WORKSPACE_DIR: t.config.workspaceDir,
    LOG_LEVEL: 'warn',
    LOG_PRETTY: 'false',
  };
}

async function call(client: Client, name: string, args: Record<string, unknown> = {}): Promise<ToolResult> {
  return (await client.callTool({ name, arguments: args })) as ToolResult;
}

describe('MCP over stdio', () => {
  let client: Client;
  let transport: StdioClientTransport;
  let stderr = '';

  beforeAll(async () => {
    transport = new StdioClientTransport({
      command: process.execPath,
      args: tsNodeArgs('mcp/stdio.ts'),
      cwd: PROJECT_ROOT,
      env: childEnv(),
      stderr: 'pipe',
    });
    transport.stderr?.on('data', (d) => (stderr += d));
    client = new Client({ name: 'mcp-test', version: '1.0.0' });
    await client.connect(transport);
  });

  afterAll(async () => {
    await client?.close();
  });

  it('lists all eleven tools, each input field described, with output schemas', async () => {
    const { tools } = await client.listTools();
    expect(tools.map((x) => x.name).sort()).toEqual([...TOOL_NAMES].sort());
    expect(TOOL_NAMES).toHaveLength(11);
    for (const tool of tools) {
      expect(tool.description, tool.name).toBeTruthy();
      expect(tool.outputSchema?.type, tool.name).toBe('object');
      for (const [field, schema] of Object.entries(tool.inputSchema.properties ?? {})) {
        expect((schema as { description?: string }).description, `${tool.name}.${field}`).toBeTruthy();
      }
    }
    expect(client.getServerVersion()).toMatchObject({ name: 'personal-knowledge-mcp' });
  });

  it('semantic_search finds a function by name, with its path, line range and commit', async () => {
    const r = await call(client, 'semantic_search', { query: 'parse_settings', limit: 3 });
    expect(r.isError).toBeFalsy();
    expect(r.structuredContent!.results[0]).toMatchObject({
      repository: 'billing',
      path: 'tools/settings.py',
      // The two small functions share one chunk, named by both.
      startLine: 1,
      endLine: 13,
      symbol: 'parse_settings, merge_settings',
      kind: 'function',
      language: 'python',
    });
    expect(r.structuredContent!.results[0].snippet).toContain('def parse_settings(path):');
    expect(r.structuredContent!.results.length).toBeLessThanOrEqual(3);
    expect(r.structuredContent!.commits).toEqual([{ repository: 'billing', branch: 'main', commit: repo.head() }]);
    expect(textOf(r)).toContain('billing:tools/settings.py:1-13 function parse_settings, merge_settings');
  });

  it('semantic_search filters by language and path glob, and says when nothing matches', async () => {
    const ts = await call(client, 'semantic_search', { query: 'render a report of the total', language: 'typescript', path_glob: 'src/report.ts' });
    expect(ts.structuredContent!.results.map((h: { path: string }) => h.path)).toEqual(['src/report.ts']);
    const none = await call(client, 'semantic_search', { query: 'settings', language: 'rust' });
    expect(none.isError).toBe(true);
    expect(textOf(none)).toBe('no indexed code matched "settings" with language rust. Try other words or fewer filters; list_repositories shows what is indexed');
    const badLanguage = await call(client, 'semantic_search', { query: 'x', language: 'ts' });
    expect(badLanguage.isError).toBe(true);
    expect(textOf(badLanguage)).toMatch(/^unknown language "ts": use one of typescript, tsx, javascript, python/);
  });

  it('list_repositories shows branch, indexed commit, status and counts', async () => {
    const [stored] = await t.platform.repositories.list();
    const b = stored!.branches[0]!;
    const r = await call(client, 'list_repositories');
    expect(r.structuredContent).toEqual({
      repositories: [
        {
          name: 'billing',
          instance: 'private',
          defaultBranch: 'main',
          branches: [
            {
              branch: 'main',
              status: 'ready',
              indexedCommit: repo.head(),
              indexedAt: b.indexedAt!.toISOString(),
              files: 4,
              chunks: b.chunkCount,
              lastError: null,
              lastJobId: firstJobId,
              semantic: null,
            },
          ],
        },
      ],
    });
    expect(textOf(r)).toBe(`1 repository:\n- billing (private) main@${repo.head().slice(0, 12)}: ready, 4 files, ${b.chunkCount} chunks`);
  });

  it('get_file returns the exact lines at the indexed commit', async () => {
    const whole = await call(client, 'get_file', { repository: 'billing', path: 'src/math.ts' });
    expect(whole.structuredContent).toEqual({
      repository: 'billing',
      path: 'src/math.ts',
      commit: repo.head(),
      language: 'typescript',
      startLine: 1,
      endLine: 7,
      totalLines: 7,
      content: MATH_TS,
      truncated: false,
      source: 'mirror',
    });
    const part = await call(client, 'get_file', { repository: 'billing', path: './src/math.ts', start_line: 5, end_line: 7 });
    expect(part.structuredContent).toMatchObject({ startLine: 5, endLine: 7, content: MATH_TS.split('\n').slice(4, 7).join('\n') + '\n', truncated: false });
    expect(textOf(part)).toBe(`billing:src/math.ts lines 5-7 of 7 (@${repo.head().slice(0, 12)})\n${MATH_TS.split('\n').slice(4, 7).join('\n')}\n`);
  });

  it('get_file bounds its answer and says how to read on', async () => {
    const first = await call(client, 'get_file', { repository: 'billing', path: 'notes/long.txt' });
    expect(first.structuredContent).toMatchObject({ startLine: 1, endLine: 400, totalLines: 500, truncated: true, nextStartLine: 401 });
    expect(first.structuredContent!.content).toBe(LONG_TXT.split('\n').slice(0, 400).join('\n') + '\n');
    expect(textOf(first)).toContain('[truncated at 400 lines / 40 KB: call get_file with start_line: 401 to read on]');
    const rest = await call(client, 'get_file', { repository: 'billing', path: 'notes/long.txt', start_line: 401 });
    expect(rest.structuredContent).toMatchObject({ startLine: 401, endLine: 500, truncated: false, content: LONG_TXT.split('\n').slice(400).join('\n') });
    expect(rest.structuredContent).not.toHaveProperty('nextStartLine');
  });

  it('get_file rebuilds the file from the indexed chunks when there is no Git mirror', async () => {
    const billing = (await t.platform.repositories.findByName('billing'))!;
    rmSync(path.join(t.config.workspaceDir, `repo-${billing.id}`), { recursive: true, force: true });
    const r = await call(client, 'get_file', { repository: 'billing', path: 'tools/settings.py' });
    expect(r.structuredContent).toMatchObject({ source: 'index', content: PY_SETTINGS, totalLines: 13, truncated: false });
    expect(textOf(r)).toContain('rebuilt from the index');
  });

  it('get_file failures are actionable', async () => {
    const missing = await call(client, 'get_file', { repository: 'billing', path: 'math.ts' });
    expect(missing.isError).toBe(true);
    expect(textOf(missing)).toBe('no indexed file "math.ts" in billing (did you mean "src/math.ts"?). Binary, vendored, generated and oversized files are not indexed');
    const past = await call(client, 'get_file', { repository: 'billing', path: 'src/math.ts', start_line: 8 });
    expect(textOf(past)).toBe('src/math.ts has 7 lines; start_line 8 is past its end');
    const unknown = await call(client, 'get_file', { repository: 'nope', path: 'src/math.ts' });
    expect(unknown.isError).toBe(true);
    expect(textOf(unknown)).toBe('no repository named "nope". Call list_repositories to see the repositories you can use.');
  });

  it('answers graph questions: definitions, callers, callees, imports, layout', async () => {
    const found = await call(client, 'find_symbol', { name: 'total' });
    expect(found.structuredContent!.results).toEqual([
      { repository: 'billing', path: 'src/math.ts', name: 'total', qualifiedName: 'total', kind: 'function', startLine: 5, endLine: 7 },
    ]);
    expect(textOf(found)).toBe('1 definition of "total":\n- billing:src/math.ts:5-7 function total');

    const callers = await call(client, 'get_callers', { symbol: 'total' });
    expect(callers.structuredContent!.results).toEqual([
      { repository: 'billing', path: 'src/report.ts', name: 'renderReport', qualifiedName: 'renderReport', kind: 'function', startLine: 3, endLine: 5, depth: 1 },
    ]);
    const callees = await call(client, 'get_callees', { symbol: 'renderReport', depth: 2 });
    expect(callees.structuredContent!.results.map((s: { name: string; depth: number }) => `${s.name}@${s.depth}`)).toEqual(['total@1', 'add@2']);
    expect(callees.structuredContent!.commits).toEqual([{ repository: 'billing', branch: 'main', commit: repo.head() }]);

    const deps = await call(client, 'get_dependencies', { path: 'src/report.ts' });
    expect(deps.structuredContent).toEqual({
      repository: 'billing',
      branch: 'main',
      commit: repo.head(),
      path: 'src/report.ts',
      depth: 1,
      results: [{ kind: 'file', name: 'src/math.ts', depth: 1 }],
    });
    const dependents = await call(client, 'get_dependents', { path: 'src/math.ts', repository: 'billing' });
    expect(dependents.structuredContent!.results).toEqual([{ kind: 'file', name: 'src/report.ts', depth: 1 }]);

    const arch = await call(client, 'get_architecture', { repository: 'billing' });
    expect(arch.structuredContent).toMatchObject({ repository: 'billing', commit: repo.head(), depth: 1, truncated: false });
    expect(arch.structuredContent!.folders).toEqual([
      { folder: 'src', files: 2, symbols: 3 },
      { folder: 'tools', files: 1, symbols: 2 },
    ]);
    expect(arch.structuredContent!.edges).toEqual([]);

    const nothing = await call(client, 'find_symbol', { name: 'doesNotExist' });
    expect(nothing.isError).toBe(true);
    expect(textOf(nothing)).toBe('no symbol named "doesNotExist" in the code graph. Try find_symbol with prefix: true, or semantic_search to find it by meaning.');
    const noCallers = await call(client, 'get_callers', { symbol: 'renderReport' });
    expect(noCallers.isError).toBeFalsy();
    expect(noCallers.structuredContent!.results).toEqual([]);
  });

  it('get_job_status shows a finished run', async () => {
    const r = await call(client, 'get_job_status', { job_id: firstJobId });
    expect(r.structuredContent).toMatchObject({ id: firstJobId, name: 'index-repository', repository: 'billing', state: 'completed', result: { commit: repo.head(), upToDate: false } });
    expect(textOf(r)).toMatch(new RegExp(`^job ${firstJobId} \\(index-repository, billing\\) completed: indexed ${repo.head().slice(0, 12)}, 4 files changed`));
    const unknown = await call(client, 'get_job_status', { job_id: '999999' });
    expect(unknown.isError).toBe(true);
    expect(textOf(unknown)).toMatch(/^no job with id "999999"/);
  });

  it('bad arguments give a clear error result, and the server keeps serving', async () => {
    const missing = await call(client, 'semantic_search', {});
    expect(missing.isError).toBe(true);
    expect(textOf(missing)).toMatch(/Invalid arguments for tool semantic_search/);
    expect(textOf(missing)).toMatch(/query/);
    const wrongType = await call(client, 'get_file', { repository: 'billing', path: 'src/math.ts', start_line: 'five' });
    expect(wrongType.isError).toBe(true);
    expect(textOf(wrongType)).toMatch(/start_line/);
    const unknownField = await call(client, 'semantic_search', { query: 'x', repo: 'billing' });
    expect(unknownField.isError).toBe(true);
    expect(textOf(unknownField)).toMatch(/repo/);
    const unknownTool = await call(client, 'no_such_tool');
    expect(unknownTool.isError).toBe(true);
    expect((await client.listTools()).tools).toHaveLength(11);
  });

  it('index_repository reports progress while it waits for the run, then the final status', async () => {
    repo.write({ 'src/refunds.ts': 'export function issueRefund(orderId: string) {\n  return { orderId, refunded: true };\n}\n' });
    const head = repo.commit('add refunds');
    const updates: Array<{ progress: number; total?: number; message?: string }> = [];
    const r = (await client.callTool({ name: 'index_repository', arguments: { repository: 'billing' } }, undefined, {
      onprogress: (p) => updates.push(p),
      timeout: 120_000,
      resetTimeoutOnProgress: true,
    })) as ToolResult;
    expect(r.isError, textOf(r)).toBeFalsy();
    expect(r.structuredContent).toMatchObject({ repository: 'billing', branch: 'main', registered: false, finished: true, job: { state: 'completed', result: { commit: head } } });
    // The SDK client runs notification handlers a microtask after the response that may share their chunk,
    // so the last notification (progress = total) can arrive after the call ended: only the ones before are checked.
    expect(updates.length).toBeGreaterThan(0);
    for (let i = 1; i < updates.length; i++) expect(updates[i]!.progress).toBeGreaterThan(updates[i - 1]!.progress);
    for (const u of updates) {
      expect(u.message).toMatch(/^job \d+ \(index-repository, billing\) /);
      if (u.total !== undefined) expect(u.progress).toBeLessThanOrEqual(u.total);
    }
    expect(textOf(r)).toMatch(new RegExp(`^Indexing billing \\(main\\): job \\d+ \\(index-repository, billing\\) completed: indexed ${head.slice(0, 12)}, 1 file changed`));

    const found = await call(client, 'semantic_search', { query: 'issueRefund' });
    expect(found.structuredContent!.results[0]).toMatchObject({ path: 'src/refunds.ts', startLine: 1, endLine: 3 });
  });

  it('index_repository registers a new repository from a path and returns its job id at once', async () => {
    const other = createGitFixture();
    try {
      other.write({ 'lib/clamp.js': 'export function clampValue(v, lo, hi) {\n  return Math.min(hi, Math.max(lo, v));\n}\n' });
      other.commit('code');
      const r = await call(client, 'index_repository', { repository: other.dir });
      expect(r.isError, textOf(r)).toBeFalsy();
      expect(r.structuredContent).toMatchObject({ repository: path.basename(other.dir), branch: 'main', registered: true, finished: false });
      expect(textOf(r)).toContain(`Follow it with get_job_status (job_id: "${r.structuredContent!.jobId}")`);
      await waitForJob(t.platform.queues.queues.index, r.structuredContent!.jobId);
      const again = await call(client, 'index_repository', { repository: 'no-such-name' });
      expect(textOf(again)).toBe('no repository named "no-such-name"; to register a new one, pass its Git URL (https://…). Call list_repositories to see the repositories you can use.');
    } finally {
      other.cleanup();
    }
  });

  it('keeps stdout for the protocol: nothing but warnings on stderr', () => {
    expect(stderr).not.toMatch(/"level":(50|60)/);
  });
});

describe('stdio warm-up', () => {
  const deps = (search = t.search) => ({
    platform: t.platform,
    search,
    graph: createGraphQueryService(t.platform),
    repos: t.repos,
    jobs: createJobStatusService(t.platform),
    principal: { name: 'stdio', scopes: ['read' as const], instances: ['*'] },
    logger: silentLogger,
  });

  it('searches through a private server, bounded by count and time', async () => {
    let searched = 0;
    const counting = { search: (q: Parameters<typeof t.search.search>[0]) => (searched++, t.search.search(q)) };
    expect(await warmUp(createMcpServer(deps(counting)), silentLogger, { calls: 5, budgetMs: 30_000 })).toMatchObject({ calls: 5 });
    expect(searched).toBe(5);
    expect((await warmUp(createMcpServer(deps(counting)), silentLogger, { calls: 5, budgetMs: 0 })).calls).toBe(0);
    expect(searched).toBe(5);
  });

  it('keeps its time bound while a search never returns, and leaves it behind', async () => {
    let started = 0;
    const hanging = { search: () => (started++, new Promise<never>(() => undefined)) };
    const result = await warmUp(createMcpServer(deps(hanging as unknown as typeof t.search)), silentLogger, { calls: 5, budgetMs: 300 });
    expect(result.calls).toBe(0);
    expect(started).toBe(1);
  }, 10_000);

  it('never fails start-up: a search that throws ends it early', async () => {
    const broken = { search: async () => Promise.reject(new Error('postgres is down')) };
    // The tool answers isError for each call (the agent would see the reason); warm-up carries on and resolves.
    await expect(warmUp(createMcpServer(deps(broken as unknown as typeof t.search)), silentLogger, { calls: 3, budgetMs: 30_000 })).resolves.toMatchObject({ calls: 3 });
  });
});

describe('stdio with the openai embedding provider', () => {
  async function connect(env: Record<string, string>): Promise<{ client: Client; stderr: () => string }> {
    let stderr = '';
    const transport = new StdioClientTransport({
      command: process.execPath,
      args: tsNodeArgs('mcp/stdio.ts'),
      cwd: PROJECT_ROOT,
      env: { ...childEnv(), EMBEDDING_PROVIDER: 'openai', OPENAI_API_KEY: 'test-key', ...env },
      stderr: 'pipe',
    });
    transport.stderr?.on('data', (d) => (stderr += d));
    const client = new Client({ name: 'mcp-test', version: '1.0.0' });
    // Resolves once the server answers `initialize`, which it does only after its warm-up.
    await client.connect(transport);
    return { client, stderr: () => stderr };
  }

  it('start-up sends no request to the paid embedding API; a search sends one', async () => {
    const fake = await startFakeOpenAI();
    try {
      const { client } = await connect({ OPENAI_BASE_URL: fake.url });
      try {
        expect(fake.requests).toHaveLength(0);
        const found = await call(client, 'semantic_search', { query: 'total' });
        expect(found.isError).toBeFalsy();
        expect(fake.requests.map((r) => r.inputs)).toEqual([['total']]);
      } finally {
        await client.close();
      }
    } finally {
      await fake.close();
    }
  });

  it('with the embedding server down, starts and answers semantic_search from full text, saying so', async () => {
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const closed = (probe.address() as AddressInfo).port;
    await new Promise((resolve) => probe.close(resolve));

    const { client, stderr } = await connect({ OPENAI_BASE_URL: `http://127.0.0.1:${closed}/v1` });
    try {
      const found = await call(client, 'semantic_search', { query: 'total' });
      expect(found.isError, textOf(found)).toBeFalsy();
      expect(textOf(found)).toMatch(/^Warning: vector search unavailable: the embedding server could not be reached; results come from full-text search alone\.\n/);
      expect(textOf(found)).toContain('billing:src/math.ts');
      expect(found.structuredContent!.warnings).toEqual([{ code: 'vector_search_unavailable', message: expect.stringContaining('could not be reached') }]);
      // The operator's log has the detail the agent is not shown.
      expect(stderr()).toContain(`Could not reach the embedding server at http://127.0.0.1:${closed}/v1`);
    } finally {
      await client.close();
    }
  }, 90_000);
});

describe('stdio process lifecycle', () => {
  async function startAndStop(stop: (child: ReturnType<typeof spawn>) => void): Promise<{ code: number | null; stdout: string }> {
    const child = spawn(process.execPath, tsNodeArgs('mcp/stdio.ts'), { cwd: PROJECT_ROOT, env: { ...childEnv(), LOG_LEVEL: 'info' } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`stdio server did not start: ${stderr}`)), 30_000);
      child.stderr.on('data', (d) => {
        stderr += d;
        if (stderr.includes('mcp server listening on stdio')) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
    stop(child);
    return { code: await exited, stdout };
  }

  it('exits cleanly when the client closes stdin', async () => {
    const { code, stdout } = await startAndStop((child) => child.stdin!.end());
    expect(code).toBe(0);
    expect(stdout).toBe('');
  });

  it('exits cleanly on SIGTERM', async () => {
    const { code } = await startAndStop((child) => child.kill('SIGTERM'));
    expect(code).toBe(0);
  });
});

describe('MCP over Streamable HTTP and SSE', () => {
  let app: FastifyInstance;
  let base: string;
  const tokens: Record<'reader' | 'writer' | 'outsider', string> = { reader: '', writer: '', outsider: '' };
  const open: Client[] = [];
  const auth = (token: string) => ({ Authorization: `Bearer ${token}` });

  async function connect(kind: 'streamable' | 'sse', token: string): Promise<{ client: Client; transport: StreamableHTTPClientTransport | SSEClientTransport }> {
    const requestInit = { headers: auth(token) };
    const transport =
      kind === 'streamable'
        ? new StreamableHTTPClientTransport(new URL(`${base}/mcp`), { requestInit })
        : new SSEClientTransport(new URL(`${base}/sse`), { requestInit });
    const client = new Client({ name: `mcp-test-${kind}`, version: '1.0.0' });
    await client.connect(transport);
    open.push(client);
    return { client, transport };
  }

  /** Closing a Streamable HTTP client does not end its session on the server; DELETE does. */
  async function disconnect({ client, transport }: Awaited<ReturnType<typeof connect>>): Promise<void> {
    if (transport instanceof StreamableHTTPClientTransport) await transport.terminateSession();
    await client.close();
  }

  const initialize = (token: string | undefined, headers: Record<string, string> = {}) =>
    fetch(`${base}/mcp`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...(token ? auth(token) : {}), ...headers },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } }),
    });

  beforeAll(async () => {
    const service = createTokenService(t.platform.stores.postgres, { instances: t.config.instances });
    tokens.reader = (await service.create({ name: 'mcp-reader', scopes: ['read'], instances: ['private'] })).token;
    tokens.writer = (await service.create({ name: 'mcp-writer', scopes: ['read', 'write'], instances: ['*'] })).token;
    tokens.outsider = (await service.create({ name: 'mcp-outsider', scopes: ['read'], instances: ['public'] })).token;

    const typed = Fastify().withTypeProvider<ZodTypeProvider>();
    typed.setValidatorCompiler(validatorCompiler);
    typed.setSerializerCompiler(serializerCompiler);
    registerErrorHandler(typed);
    await registerAuth(typed, { tokens: service });
    await typed.register(mcpHttpRoutes, {
      platform: t.platform,
      search: t.search,
      graph: createGraphQueryService(t.platform),
      repos: t.repos,
      jobs: createJobStatusService(t.platform),
      allowedOrigins: [ALLOWED_ORIGIN],
      maxSessions: 4,
    });
    app = typed;
    await app.listen({ host: '127.0.0.1', port: 0 });
    base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    await Promise.allSettled(open.map((c) => c.close()));
    await app?.close();
  });

  it('Streamable HTTP: lists tools and searches', async () => {
    const { client, transport } = await connect('streamable', tokens.reader);
    expect((transport as StreamableHTTPClientTransport).sessionId).toMatch(/^[0-9a-f-]{36}$/);
    expect((await client.listTools()).tools.map((x) => x.name).sort()).toEqual([...TOOL_NAMES].sort());
    const r = await call(client, 'semantic_search', { query: 'parse_settings' });
    expect(r.structuredContent!.results[0]).toMatchObject({ repository: 'billing', path: 'tools/settings.py', symbol: 'parse_settings, merge_settings', startLine: 1, endLine: 13 });
  });

  it('SSE: lists tools and searches', async () => {
    const { client } = await connect('sse', tokens.reader);
    expect((await client.listTools()).tools).toHaveLength(11);
    const r = await call(client, 'semantic_search', { query: 'renderReport', repository: 'billing' });
    // The import above the function is too small to stand alone: the chunker glues it on.
    expect(r.structuredContent!.results[0]).toMatchObject({ repository: 'billing', path: 'src/report.ts', startLine: 1, endLine: 5, symbol: 'renderReport' });
  });

  it('refuses requests without a token (401)', async () => {
    const res = await initialize(undefined);
    expect(res.status).toBe(401);
    expect(await res.json()).toEqual({ error: 'unauthorized', message: 'missing bearer token' });
    const sse = await fetch(`${base}/sse`);
    expect(sse.status).toBe(401);
    const bad = await initialize('pk_mcp_00000000000000000000000000000000');
    expect(bad.status).toBe(401);
  });

  it('refuses browser origins that are not allowed (403), accepts allowed ones and clients without Origin', async () => {
    const evil = await initialize(tokens.reader, { origin: 'http://evil.example' });
    expect(evil.status).toBe(403);
    expect(await evil.json()).toEqual({
      error: 'forbidden_origin',
      message: `origin http://evil.example may not use the MCP endpoints (allowed: ${ALLOWED_ORIGIN}; set CORS_ORIGINS)`,
    });
    const evilSse = await fetch(`${base}/sse`, { headers: { ...auth(tokens.reader), origin: 'null' } });
    expect(evilSse.status).toBe(403);
    const good = await initialize(tokens.reader, { origin: ALLOWED_ORIGIN });
    expect(good.status).toBe(200);
    const id = good.headers.get('mcp-session-id')!;
    await good.body?.cancel();
    const closed = await fetch(`${base}/mcp`, { method: 'DELETE', headers: { ...auth(tokens.reader), 'mcp-session-id': id } });
    expect(closed.status).toBe(200);
  });

  it('a read-only token cannot index', async () => {
    const session = await connect('streamable', tokens.reader);
    const r = await call(session.client, 'index_repository', { repository: 'billing' });
    expect(r.isError).toBe(true);
    expect(textOf(r)).toBe('"mcp-reader" has read access only: indexing needs the write scope. Ask the operator for a token with write access');
    await disconnect(session);
  });

  it('a token for another instance does not see the repository', async () => {
    const session = await connect('streamable', tokens.outsider);
    const { client } = session;
    expect((await call(client, 'list_repositories')).structuredContent).toEqual({ repositories: [] });
    const search = await call(client, 'semantic_search', { query: 'parse_settings', repository: 'billing' });
    expect(search.isError).toBe(true);
    expect(textOf(search)).toBe('no repository named "billing". Call list_repositories to see the repositories you can use.');
    const file = await call(client, 'get_file', { repository: 'billing', path: 'src/math.ts' });
    expect(textOf(file)).toMatch(/^no repository named "billing"/);
    const job = await call(client, 'get_job_status', { job_id: firstJobId });
    expect(textOf(job)).toMatch(/^no job with id/);
    const symbol = await call(client, 'find_symbol', { name: 'total' });
    expect(symbol.isError).toBe(true);
    await disconnect(session);
  });

  it("a session only answers the token that opened it, and DELETE ends it", async () => {
    const { transport } = await connect('streamable', tokens.reader);
    const sessionId = (transport as StreamableHTTPClientTransport).sessionId!;
    const list = (token: string) =>
      fetch(`${base}/mcp`, {
        method: 'POST',
        headers: { ...auth(token), 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-06-18' },
        body: JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/list' }),
      });
    const stolen = await list(tokens.writer);
    expect(stolen.status).toBe(404);
    expect(await stolen.json()).toEqual({ jsonrpc: '2.0', error: { code: -32001, message: 'Session not found: start a new session with initialize' }, id: null });
    const own = await list(tokens.reader);
    expect(own.status).toBe(200);
    await own.body?.cancel();

    await (transport as StreamableHTTPClientTransport).terminateSession();
    const after = await list(tokens.reader);
    expect(after.status).toBe(404);
  });

  it('caps the number of open sessions', async () => {
    // Sessions still open: the first Streamable one and the SSE one. Two more fill the cap of 4.
    await connect('streamable', tokens.writer);
    await connect('sse', tokens.writer);
    const refused = await initialize(tokens.writer);
    expect(refused.status).toBe(503);
    expect(((await refused.json()) as { error: { message: string } }).error.message).toMatch(/too many open MCP sessions \(4\)/);
    const sse = await fetch(`${base}/sse`, { headers: auth(tokens.writer) });
    expect(sse.status).toBe(503);
  });
});
