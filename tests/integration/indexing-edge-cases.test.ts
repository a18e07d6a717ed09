import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, symlinkSync } from 'node:fs';
import path from 'node:path';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_PATH_BYTES } from '../../shared/indexing/file-filter.ts';
import { utf16AsUtf8 } from '../../shared/indexing/index-run.ts';
import { fullTextQuery } from '../../shared/search/hybrid-search.ts';
import type { IndexResult } from '../../workers/jobs/index-repository.job.ts';
import { startFakeOpenAI, type FakeOpenAI } from '../helpers/fake-openai-server.ts';
import { createGitFixture, type GitFixture } from '../helpers/git-fixture.ts';
import { connectMcpClient } from '../helpers/mcp-client.ts';
import { openTestPlatform, waitForJob, type TestPlatform } from '../helpers/platform.ts';

/**
 * Repositories as they come: odd file names (also ones that are not UTF-8),
 * odd encodings and contents, symlinks and submodules, renames and ignore
 * rules changing, branches side by side. Each run must succeed or fail with a
 * precise reason, and leave Postgres, Chroma and Neo4j agreeing: every live
 * chunk has one vector, the graph holds only live files, staging is empty.
 */

function gitIn(fixture: GitFixture, args: string[], input?: Buffer): Buffer {
  const env = { ...process.env, GIT_AUTHOR_NAME: 'Test', GIT_AUTHOR_EMAIL: 'test@example.invalid', GIT_COMMITTER_NAME: 'Test', GIT_COMMITTER_EMAIL: 'test@example.invalid' };
  return execFileSync('git', args, { cwd: fixture.dir, env, ...(input ? { input } : {}) });
}

/** Stages entries by their raw name bytes (which a file system or argv may not carry), as blobs or as a submodule commit. */
function stageRaw(fixture: GitFixture, entries: Array<{ name: Buffer | string; content: Buffer | string } | { name: string; gitlink: string }>): void {
  const records = entries.map((e) => {
    const [mode, sha] =
      'gitlink' in e ? ['160000', e.gitlink] : ['100644', gitIn(fixture, ['hash-object', '-w', '--stdin'], Buffer.from(e.content)).toString().trim()];
    return Buffer.concat([Buffer.from(`${mode} ${sha}\t`), Buffer.from(e.name), Buffer.from([0])]);
  });
  gitIn(fixture, ['update-index', '-z', '--add', '--index-info'], Buffer.concat(records));
}

/** Commits the index as it is: `fixture.commit` adds the work tree, which would drop entries staged by raw name. */
function commitIndex(fixture: GitFixture, message: string): string {
  gitIn(fixture, ['commit', '--quiet', '--allow-empty', '-m', message]);
  return fixture.head();
}

/** A name with a byte that is not UTF-8, and how the index shows it (as git quotes it). */
const latin1 = (head: string, byte: number, tail: string) => Buffer.concat([Buffer.from(head), Buffer.from([byte]), Buffer.from(tail)]);

describe('indexing unusual repositories end to end', () => {
  let t: TestPlatform;
  const fixtures: GitFixture[] = [];

  beforeAll(async () => {
    t = await openTestPlatform();
    await t.startWorkers();
  });

  afterAll(async () => {
    await t?.cleanup();
    for (const f of fixtures) f.cleanup();
  });

  function fixture(branch = 'main'): GitFixture {
    const f = createGitFixture(branch);
    fixtures.push(f);
    return f;
  }

  async function index(name: string, options: { branch?: string; full?: boolean } = {}): Promise<IndexResult> {
    const { jobId } = await t.repos.requestIndex(name, options);
    return (await waitForJob(t.platform.queues.queues.index, jobId)) as IndexResult;
  }

  async function repositoryId(name: string): Promise<number> {
    return (await t.platform.repositories.findByName(name))!.id;
  }

  async function liveFiles(name: string, branch = 'main'): Promise<string[]> {
    return [...(await t.platform.chunks.liveFiles(await repositoryId(name), branch)).keys()].sort();
  }

  async function liveChunks(name: string, branch = 'main') {
    const { rows } = await t.platform.stores.postgres.pool.query<{ id: string; path: string; start_line: number; end_line: number; content: string }>(
      'SELECT id, path, start_line, end_line, content FROM chunks WHERE repository_id = $1 AND branch = $2',
      [await repositoryId(name), branch],
    );
    return rows;
  }

  async function graphPaths(name: string, branch = 'main'): Promise<{ files: string[]; symbolFiles: string[] }> {
    const scope = { repoId: t.platform.graph.repoKey(await repositoryId(name)), branch };
    const files = await t.platform.graph.read<{ path: string }>('MATCH (f:File {repoId: $repoId, branch: $branch}) WHERE NOT f.placeholder RETURN f.path AS path', scope);
    const symbols = await t.platform.graph.read<{ path: string }>('MATCH (s:Symbol {repoId: $repoId, branch: $branch}) RETURN DISTINCT s.path AS path', scope);
    return { files: files.map((r) => r.path).sort(), symbolFiles: symbols.map((r) => r.path).sort() };
  }

  /** Postgres, Chroma and Neo4j agree on the branch, and no run left anything staged. */
  async function expectConsistent(name: string, branch = 'main'): Promise<void> {
    const id = await repositoryId(name);
    const files = new Set(await liveFiles(name, branch));
    const chunks = await liveChunks(name, branch);
    const vectors = await t.platform.vectors.ids({ repositoryBranches: [{ repositoryId: id, branch }] });
    expect(vectors.sort()).toEqual(chunks.map((c) => c.id).sort());
    expect(chunks.filter((c) => !files.has(c.path))).toEqual([]);
    const graph = await graphPaths(name, branch);
    expect(graph.files.filter((p) => !files.has(p))).toEqual([]);
    expect(graph.symbolFiles.filter((p) => !files.has(p))).toEqual([]);
    const { rows } = await t.platform.stores.postgres.pool.query<{ n: number }>(
      'SELECT (SELECT count(*) FROM chunk_staging) + (SELECT count(*) FROM file_staging) + (SELECT count(*) FROM graph_staging) AS n',
    );
    expect(Number(rows[0]!.n)).toBe(0);
  }

  /**
   * Where search finds `query` in `file` of one repository, by lines: its hit among the first three (the
   * markers share words, `Marker` and parts of paths, so which of them ranks first is not the point here).
   */
  async function found(name: string, query: string, file: string) {
    const { hits } = await t.search.search({ query, repositories: [name], limit: 3 });
    const hit = hits.find((h) => h.path === file);
    return hit ? { path: hit.path, startLine: hit.startLine, endLine: hit.endLine } : { missing: file, got: hits.map((h) => h.path) };
  }

  it('indexes files with unusual names under their own paths, at once and by diff', async () => {
    const repo = fixture();
    const deep = Array.from({ length: 5 }, (_, i) => `level${i}-${'d'.repeat(50)}`).join('/');
    repo.write({
      'with space.ts': 'export function spaceMarker() { return 1; }\n',
      'quote"\'s.ts': 'export function quoteMarker() { return 2; }\n',
      'café/日本/🎉.ts': 'export function unicodeMarker() { return 3; }\n',
      'tab\tname.ts': 'export function tabMarker() { return 4; }\n',
      'new\nline.ts': 'export function newlineMarker() { return 5; }\n',
      '[a].ts': 'export function bracketMarker() { return 6; }\n',
      '*.ts': 'export function starMarker() { return 7; }\n',
      [`${deep}/deep.ts`]: 'export function deepMarker() { return 8; }\n',
    });
    symlinkSync('with space.ts', path.join(repo.dir, 'link.ts'));
    const first = repo.commit('odd names');
    // Beyond what a file system takes: names that are not UTF-8, a path longer than Postgres can key, a submodule.
    const tooLong = `${Array.from({ length: 30 }, () => randomBytes(90).toString('base64url')).join('/')}/far.ts`;
    expect(Buffer.byteLength(tooLong)).toBeGreaterThan(MAX_PATH_BYTES);
    stageRaw(repo, [
      { name: latin1('raw', 0xff, '.ts'), content: 'export function rawFfMarker() { return 9; }\n' },
      { name: latin1('raw', 0xfe, '.ts'), content: 'export function rawFeMarker() { return 10; }\n' },
      { name: latin1('build', 0xe9, '.ts'), content: 'export function buildLatin1Marker() { return 11; }\n' },
      { name: tooLong, content: 'export function tooLongMarker() { return 12; }\n' },
      { name: 'vendored', gitlink: first },
    ]);
    commitIndex(repo, 'raw names');
    await t.repos.add({ source: repo.dir, name: 'names' });
    await index('names');

    const expected = [
      '*.ts', '[a].ts', 'build\\351.ts', 'café/日本/🎉.ts', `${deep}/deep.ts`, 'new\nline.ts', 'quote"\'s.ts', 'raw\\376.ts', 'raw\\377.ts', 'tab\tname.ts', 'with space.ts',
    ].sort();
    expect(await liveFiles('names')).toEqual(expected);
    await expectConsistent('names');
    const markers: Record<string, string> = {
      spaceMarker: 'with space.ts', quoteMarker: 'quote"\'s.ts', unicodeMarker: 'café/日本/🎉.ts', tabMarker: 'tab\tname.ts', newlineMarker: 'new\nline.ts',
      bracketMarker: '[a].ts', starMarker: '*.ts', deepMarker: `${deep}/deep.ts`, rawFfMarker: 'raw\\377.ts', rawFeMarker: 'raw\\376.ts', buildLatin1Marker: 'build\\351.ts',
    };
    for (const [marker, file] of Object.entries(markers)) expect(await found('names', marker, file), marker).toEqual({ path: file, startLine: 1, endLine: 1 });
    expect((await graphPaths('names')).files).toEqual(expected);

    // By diff: an edit, a deletion and a rename between names that are not UTF-8.
    repo.write({ 'new\nline.ts': 'export function newlineEdited() { return 55; }\n' });
    gitIn(repo, ['add', 'new\nline.ts']);
    gitIn(repo, ['rm', '--quiet', '--cached', 'tab\tname.ts']);
    gitIn(repo, ['update-index', '-z', '--force-remove', '--stdin'], Buffer.concat([latin1('raw', 0xff, '.ts'), Buffer.from([0])]));
    stageRaw(repo, [{ name: latin1('raw', 0xfd, '.ts'), content: 'export function rawFfMarker() { return 9; }\n' }]);
    const head = commitIndex(repo, 'edit, delete, rename');
    expect(await index('names')).toMatchObject({ commit: head, upToDate: false, filesChanged: 2 });
    const after = expected.filter((p) => p !== 'tab\tname.ts' && p !== 'raw\\377.ts').concat('raw\\375.ts').sort();
    expect(await liveFiles('names')).toEqual(after);
    await expectConsistent('names');
    expect((await graphPaths('names')).files).toEqual(after);
    expect(await found('names', 'newlineEdited', 'new\nline.ts')).toEqual({ path: 'new\nline.ts', startLine: 1, endLine: 1 });
    expect(await found('names', 'rawFfMarker', 'raw\\375.ts')).toEqual({ path: 'raw\\375.ts', startLine: 1, endLine: 1 });
  });

  it('indexes unusual contents, each chunk at the lines it came from', async () => {
    const repo = fixture();
    const utf16 = (text: string, order: 'le' | 'be') => {
      const le = Buffer.from(`\ufeff${text}`, 'utf16le');
      return order === 'le' ? le : Buffer.from(le).swap16();
    };
    const prose = 'A paragraph of plain prose that goes on.\n'.repeat(250);
    const files: Record<string, string | Buffer> = {
      'crlf.ts': 'export function crlfFirst() {\r\n  return 1;\r\n}\r\n\r\nexport function crlfSecond() {\r\n  return 2;\r\n}\r\n',
      'bom.ts': Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('export function bomMarker() {\n  return 3;\n}\n')]),
      'utf16le.cs': utf16('public class Utf16LeMarker {\r\n  public int Value() { return 4; }\r\n}\r\n', 'le'),
      'utf16be.txt': utf16('utf16BeMarker: text saved big-endian\n', 'be'),
      'invalid.ts': Buffer.concat([Buffer.from('export function invalidMarker() {\n  return "'), Buffer.from([0xff, 0xfe, 0xc3]), Buffer.from('";\n}\n')]),
      // A NUL past git's 8,000-byte binary sniff: in code, and in a heading (a chunk's symbol).
      'late-nul.ts': `export function lateNulMarker() {\n${'  const step = 1;\n'.repeat(600)}}\n\0\nexport const afterTheNul = 1;\n`,
      'late-nul.md': `# Notes\n\n${prose}\n## Head\0ing nulHeadingMarker\n\nText under it.\n`,
      'one-line.txt': `oneLineMarker ${Array.from({ length: 130_000 }, (_, i) => `w${i}`).join(' ')}`,
      'empty.ts': '',
      'blank.ts': '  \n\t\n   \n',
      'bad.ts': 'export function badTsMarker( {\n  return class {;\n',
      'bad.py': 'def bad_py_marker(:\n    return [\n',
      'bad.go': 'package bad\n\nfunc BadGoMarker( {\n\treturn\n',
      'Bad.java': 'public class BadJavaMarker {\n  void m( {\n',
      'bad.rs': 'fn bad_rs_marker( {\n  let x = ;\n',
      'Bad.cs': 'class BadCsMarker {\n  void M( {\n',
      'bad.c': 'int bad_c_marker( {\n  return\n',
      'bad.cpp': 'class BadCppMarker {\n  void m( {\n',
      // Two definitions with one name on one line: one graph node.
      'twice.ts': 'class Twice { a() { return 1; } } class Twice { b() { return twiceHelper(); } }\nfunction twiceHelper() { return 2; }\n',
    };
    repo.write(files);
    repo.commit('contents');
    await t.repos.add({ source: repo.dir, name: 'contents' });
    await index('contents');

    expect(await liveFiles('contents')).toEqual(Object.keys(files).sort());
    await expectConsistent('contents');
    const { rows: counts } = await t.platform.stores.postgres.pool.query<{ path: string; chunk_count: number }>(
      `SELECT path, chunk_count FROM files WHERE repository_id = $1 AND chunk_count = 0 ORDER BY path`,
      [await repositoryId('contents')],
    );
    expect(counts.map((r) => r.path)).toEqual(['blank.ts', 'empty.ts']);

    // Every chunk is the text of its lines (a piece of its line, for a line longer than a chunk), read as the
    // indexer reads files: UTF-16 and invalid bytes decoded, the byte order mark dropped, a NUL as U+FFFD.
    const text = (name: string) => new TextDecoder().decode(utf16AsUtf8(Buffer.from(files[name]!))).replaceAll('\0', '\ufffd');
    for (const chunk of await liveChunks('contents')) {
      const lines = text(chunk.path).split('\n');
      const expected = lines.slice(chunk.start_line - 1, chunk.end_line).join('\n').replace(/\r$/, '');
      if (chunk.start_line === chunk.end_line && chunk.content !== expected) expect(expected, chunk.path).toContain(chunk.content);
      else expect(chunk.content, `${chunk.path}:${chunk.start_line}`).toBe(expected);
    }

    const expectations: Array<[string, string, number]> = [
      ['crlfSecond', 'crlf.ts', 5], ['bomMarker', 'bom.ts', 1], ['Utf16LeMarker', 'utf16le.cs', 1], ['utf16BeMarker', 'utf16be.txt', 1],
      ['invalidMarker', 'invalid.ts', 1], ['afterTheNul', 'late-nul.ts', 604], ['nulHeadingMarker', 'late-nul.md', 254], ['oneLineMarker', 'one-line.txt', 1],
      ['badTsMarker', 'bad.ts', 1], ['bad_py_marker', 'bad.py', 1], ['BadGoMarker', 'bad.go', 3], ['BadJavaMarker', 'Bad.java', 1],
      ['bad_rs_marker', 'bad.rs', 1], ['BadCsMarker', 'Bad.cs', 1], ['bad_c_marker', 'bad.c', 1], ['BadCppMarker', 'bad.cpp', 1],
    ];
    for (const [marker, file, line] of expectations) {
      const hit = await found('contents', marker, file);
      expect(hit, marker).toHaveProperty('path', file);
      const { startLine, endLine } = hit as { startLine: number; endLine: number };
      expect(startLine <= line && line <= endLine, `${marker} at lines ${startLine}-${endLine}`).toBe(true);
    }
    const twice = await t.platform.graph.read<{ n: number }>(
      `MATCH (s:Symbol {repoId: $repoId, branch: 'main', path: 'twice.ts', name: 'Twice'}) RETURN count(s) AS n`,
      { repoId: t.platform.graph.repoKey(await repositoryId('contents')) },
    );
    expect(Number(twice[0]!.n)).toBe(1);
  });

  it('MCP get_file reads a UTF-16 file as the index did, so its lines match the chunks', async () => {
    const { client, close } = await connectMcpClient(t);
    try {
      const file = (await client.callTool({ name: 'get_file', arguments: { repository: 'contents', path: 'utf16le.cs' } })) as CallToolResult;
      expect(file.isError, JSON.stringify(file.content)).toBeFalsy();
      expect(file.structuredContent).toMatchObject({
        path: 'utf16le.cs',
        startLine: 1,
        endLine: 3,
        content: 'public class Utf16LeMarker {\r\n  public int Value() { return 4; }\r\n}\r\n',
      });
    } finally {
      await close();
    }
  });

  it('follows a case-only rename, a rename with an edit, a move into an excluded folder and .gitignore changes', async () => {
    const repo = fixture();
    repo.write({
      '.gitignore': 'generated/\n',
      'src/a.ts': 'export function caseOnly() { return 1; }\n',
      'src/old-name.ts': 'export function renamedAndEdited(x: number) {\n  // one\n  // two\n  // three\n  return x + 1;\n}\n',
      'src/leaving.ts': 'export function movedToVendor() { return 3; }\n',
      'src/ignored-later.ts': 'export function ignoredLater() { return 4; }\n',
      'generated/unignored-later.ts': 'export function unignoredLater() { return 5; }\n',
    });
    repo.commit('one');
    await t.repos.add({ source: repo.dir, name: 'history' });
    await index('history');
    expect(await liveFiles('history')).toEqual(['.gitignore', 'src/a.ts', 'src/ignored-later.ts', 'src/leaving.ts', 'src/old-name.ts']);

    repo.git('mv', 'src/a.ts', 'src/A.ts');
    repo.git('mv', 'src/old-name.ts', 'src/new-name.ts');
    repo.write({ 'src/new-name.ts': 'export function renamedAndEdited(x: number) {\n  // one\n  // two\n  // three\n  return x + 2;\n}\n' });
    mkdirSync(path.join(repo.dir, 'vendor'));
    repo.git('mv', 'src/leaving.ts', 'vendor/leaving.ts');
    repo.commit('renames');
    expect(await index('history')).toMatchObject({ upToDate: false, filesChanged: 2 });
    expect(await liveFiles('history')).toEqual(['.gitignore', 'src/A.ts', 'src/ignored-later.ts', 'src/new-name.ts']);
    await expectConsistent('history');
    expect(await found('history', 'renamedAndEdited', 'src/new-name.ts')).toMatchObject({ path: 'src/new-name.ts', startLine: 1, endLine: 6 });

    repo.write({ '.gitignore': 'src/ignored-later.ts\n' });
    repo.commit('ignore rules change');
    await index('history');
    expect(await liveFiles('history')).toEqual(['.gitignore', 'generated/unignored-later.ts', 'src/A.ts', 'src/new-name.ts']);
    await expectConsistent('history');
    expect((await graphPaths('history')).files).toEqual(['generated/unignored-later.ts', 'src/A.ts', 'src/new-name.ts']);

    // Nothing indexable left: the run fails saying so, and the last good index stays, whole.
    const good = (await t.platform.repositories.getBranch(await repositoryId('history'), 'main'))!.indexedCommit;
    repo.git('rm', '--quiet', '-r', 'src', 'generated', '.gitignore');
    repo.write({ 'logo.png': Buffer.from([0x89, 0x50, 0x4e, 0x47, 0, 1]) });
    const empty = repo.commit('only a picture');
    // Two files: the picture, and the one moved to vendor/.
    await expect(index('history')).rejects.toThrow(`history@main has nothing to index at ${empty.slice(0, 12)}: 2 file(s), none of them text within the include/exclude rules`);
    expect(await t.platform.repositories.getBranch(await repositoryId('history'), 'main')).toMatchObject({ status: 'failed', indexedCommit: good });
    expect(await liveFiles('history')).toEqual(['.gitignore', 'generated/unignored-later.ts', 'src/A.ts', 'src/new-name.ts']);
    await expectConsistent('history');
  });

  it('indexes branches side by side, at the same time, and a branch named like a folder of an older one', async () => {
    const repo = fixture();
    repo.write({ 'src/shared.ts': 'export function sharedByAll() { return 1; }\n', 'src/main-only.ts': 'export function keptOnMain() { return 2; }\n' });
    repo.commit('base');
    for (const b of ['feature', 'release', 'hotfix']) repo.git('branch', b);
    await t.repos.add({ source: repo.dir, name: 'branches' });
    // Four runs of one repository at once, its mirror made by the first of them.
    const runs = await Promise.all(['main', 'feature', 'release', 'hotfix'].map((branch) => index('branches', { branch })));
    expect(runs.map((r) => r.branch)).toEqual(['main', 'feature', 'release', 'hotfix']);

    // `feature` goes, `feature/x-y` comes: git cannot keep both refs, and the mirror still had the first.
    repo.git('branch', '-D', 'feature');
    repo.git('checkout', '--quiet', '-b', 'feature/x-y');
    repo.git('rm', '--quiet', 'src/main-only.ts');
    repo.write({ 'src/feature.ts': 'export function onlyOnFeature() { return sharedByAll(); }\nimport { sharedByAll } from "./shared";\n' });
    const featureHead = repo.commit('feature work');
    repo.git('checkout', '--quiet', 'main');
    await index('branches', { branch: 'feature/x-y' });

    const id = await repositoryId('branches');
    expect(await t.platform.repositories.getBranch(id, 'feature/x-y')).toMatchObject({ status: 'ready', indexedCommit: featureHead });
    expect(await liveFiles('branches', 'feature/x-y')).toEqual(['src/feature.ts', 'src/shared.ts']);
    expect(await liveFiles('branches')).toEqual(['src/main-only.ts', 'src/shared.ts']);
    for (const branch of ['main', 'feature/x-y', 'release']) await expectConsistent('branches', branch);
    expect((await graphPaths('branches')).files).toEqual(['src/main-only.ts', 'src/shared.ts']);
    expect((await graphPaths('branches', 'feature/x-y')).files).toEqual(['src/feature.ts', 'src/shared.ts']);

    const ids = async (query: string, branch: string) =>
      (await t.platform.chunks.liveChunks(await t.platform.chunks.fullText(fullTextQuery(query), { repositoryBranches: [{ repositoryId: id, branch }] }, 10))).map((c) => c.path);
    expect(await ids('onlyOnFeature', 'feature/x-y')).toEqual(['src/feature.ts']);
    expect(await ids('onlyOnFeature', 'main')).toEqual([]);
    expect(await ids('keptOnMain', 'main')).toEqual(['src/main-only.ts']);
    expect(await ids('keptOnMain', 'feature/x-y')).toEqual([]);
    // Search reads the default branch.
    const { hits } = await t.search.search({ query: 'onlyOnFeature sharedByAll', repositories: ['branches'] });
    expect(hits.length).toBeGreaterThan(0);
    expect(hits.every((h) => h.branch === 'main')).toBe(true);
  });

  it('reuses the embeddings of the same content in another repository, and removing one leaves the other whole', async () => {
    const files = { 'lib/twin.ts': 'export function twinContent(q: number) {\n  return q * 42;\n}\n' };
    for (const name of ['twin-a', 'twin-b']) {
      const repo = fixture();
      repo.write(files);
      repo.commit(name);
      await t.repos.add({ source: repo.dir, name });
    }
    await index('twin-a');
    const before = t.platform.embeddings.stats().inputs;
    await index('twin-b');
    expect(t.platform.embeddings.stats().inputs).toBe(before);

    await t.repos.remove('twin-a');
    expect(await found('twin-b', 'twinContent', 'lib/twin.ts')).toEqual({ path: 'lib/twin.ts', startLine: 1, endLine: 3 });
    const { hits } = await t.search.search({ query: 'twinContent' });
    expect(hits.filter((h) => h.repository.startsWith('twin')).map((h) => h.repository)).toEqual(['twin-b']);
    await expectConsistent('twin-b');
  });
});

describe('a failed run whose reason holds a NUL character', () => {
  let t: TestPlatform;
  let openai: FakeOpenAI;
  let repo: GitFixture;

  beforeAll(async () => {
    openai = await startFakeOpenAI({ apiKey: 'sk-test', defaultDimensions: 8 });
    t = await openTestPlatform({
      embedding: {
        provider: 'openai',
        openaiApiKey: 'sk-test',
        openaiBaseUrl: openai.url,
        model: 'text-embedding-3-small',
        dimensions: 8,
        concurrency: 2,
        maxRetries: 0,
        localDimensions: 384,
      },
    });
    await t.startWorkers();
    repo = createGitFixture();
  });

  afterAll(async () => {
    await t?.cleanup();
    await openai?.close();
    repo?.cleanup();
  });

  it('is recorded as failed and leaves nothing staged, no vectors and no graph behind', async () => {
    repo.write({ 'src/app.ts': 'export function start() {\n  return 1;\n}\n', 'src/util.ts': 'export function helper() {\n  return 2;\n}\n' });
    repo.commit('app');
    const added = await t.repos.add({ source: repo.dir, name: 'refused' });
    // Postgres text cannot hold the NUL of this reason: recording the failure failed, and the cleanup with it.
    openai.failNext(1, { status: 403, message: 'model not allowed for key\0sk-…' });
    const { jobId } = await t.repos.requestIndex('refused');
    await expect(waitForJob(t.platform.queues.queues.index, jobId)).rejects.toThrow(/refused access to model/);

    const branch = await t.platform.repositories.getBranch(added.id, 'main');
    expect(branch).toMatchObject({ status: 'failed', indexedCommit: null });
    expect(branch!.lastError).toContain('model not allowed for key\\0sk-');
    const { rows } = await t.platform.stores.postgres.pool.query<{ n: number }>(
      'SELECT (SELECT count(*) FROM chunk_staging) + (SELECT count(*) FROM file_staging) + (SELECT count(*) FROM graph_staging) AS n',
    );
    expect(Number(rows[0]!.n)).toBe(0);
    expect(await t.platform.vectors.ids({ repositoryBranches: [{ repositoryId: added.id, branch: 'main' }] })).toEqual([]);
    // Its graph batch had written both files to the live graph; the run never published them.
    const files = await t.platform.graph.read('MATCH (f:File {repoId: $repoId}) RETURN f.path AS path', { repoId: t.platform.graph.repoKey(added.id) });
    expect(files).toEqual([]);
  });
});
