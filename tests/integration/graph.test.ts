import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGraphQueryService, type GraphQueryService } from '../../shared/graph/graph-query.service.ts';
import type { IndexResult } from '../../workers/jobs/index-repository.job.ts';
import { createGitFixture, type GitFixture } from '../helpers/git-fixture.ts';
import { openTestPlatform, waitForJob, type TestPlatform } from '../helpers/platform.ts';

/** A small multi-language repository with known imports, calls and inheritance. */
const FIXTURE: Record<string, string> = {
  'tsconfig.json': '{\n  // path aliases, as real projects have them\n  "compilerOptions": { "baseUrl": ".", "paths": { "@lib/*": ["lib/*"] } },\n}\n',
  'src/util/math.ts': [
    'export function add(a: number, b: number): number {',
    '  return a + b;',
    '}',
    '',
    'export function square(x: number): number {',
    '  return multiply(x, x);',
    '}',
    '',
    'function multiply(a: number, b: number): number {',
    '  return a * b;',
    '}',
    '',
  ].join('\n'),
  'src/app.ts': [
    "import { add, square } from './util/math';",
    "import { readFileSync } from 'fs';",
    "import { helper } from '@lib/helper';",
    '',
    'interface Runnable {',
    '  run(): number;',
    '}',
    '',
    'class Base {}',
    '',
    'export class App extends Base implements Runnable {',
    '  run(): number {',
    '    return add(helper(), square(2));',
    '  }',
    '}',
    '',
  ].join('\n'),
  'lib/helper.ts': 'export function helper(): number {\n  return 1;\n}\n',
  'py/pkg/__init__.py': '',
  'py/pkg/core.py': 'def compute(x):\n    return double(x)\n\n\ndef double(x):\n    return x * 2\n',
  'py/pkg/api.py': 'from .core import compute\n\n\ndef handle(x):\n    return compute(x)\n',
  'go.mod': 'module example.com/shop\n\ngo 1.22\n',
  'go/store/store.go': 'package store\n\nfunc Save(x int) int {\n\treturn validate(x)\n}\n\nfunc validate(x int) int {\n\treturn x\n}\n',
  'go/cmd/main.go': 'package main\n\nimport "example.com/shop/go/store"\n\nfunc main() {\n\tstore.Save(1)\n}\n',
  'java/src/main/java/com/shop/Repo.java':
    'package com.shop;\n\npublic class Repo {\n  public void save() {\n    check();\n  }\n\n  private void check() {}\n}\n',
  'java/src/main/java/com/shop/Service.java':
    'package com.shop;\n\nimport com.shop.Repo;\n\npublic class Service {\n  private Repo repo = new Repo();\n\n  public void run() {\n    repo.save();\n  }\n}\n',
};

describe('code graph in Neo4j, in step with the index', () => {
  let t: TestPlatform;
  let graph: GraphQueryService;
  let repo: GitFixture;

  async function index(name: string, branch?: string): Promise<IndexResult> {
    const { jobId } = await t.repos.requestIndex(name, branch ? { branch } : {});
    return (await waitForJob(t.platform.queues.queues.index, jobId)) as IndexResult;
  }

  /** Every edge of a kind in one repository and branch, as "from -> to" by qualified name. */
  async function edges(rel: 'CALLS' | 'EXTENDS' | 'IMPLEMENTS', repoName: string, branch = 'main'): Promise<string[]> {
    const r = (await t.platform.repositories.findByName(repoName))!;
    const rows = await t.platform.graph.read<{ a: string; b: string }>(
      `MATCH (a:Symbol {repoId: $repoId, branch: $branch})-[:${rel}]->(b:Symbol) RETURN a.qualifiedName AS a, b.qualifiedName AS b`,
      { repoId: t.platform.graph.repoKey(r.id), branch },
    );
    return rows.map((x) => `${x.a} -> ${x.b}`).sort();
  }

  async function imports(repoName: string, branch = 'main'): Promise<string[]> {
    const r = (await t.platform.repositories.findByName(repoName))!;
    const rows = await t.platform.graph.read<{ a: string; b: string }>(
      `MATCH (a:File {repoId: $repoId, branch: $branch})-[:IMPORTS]->(b) RETURN a.path AS a, coalesce(b.path, 'module:' + b.name) AS b`,
      { repoId: t.platform.graph.repoKey(r.id), branch },
    );
    return rows.map((x) => `${x.a} -> ${x.b}`).sort();
  }

  beforeAll(async () => {
    t = await openTestPlatform();
    await t.startWorkers();
    graph = createGraphQueryService(t.platform);
    repo = createGitFixture();
    repo.write(FIXTURE);
    repo.commit('fixture');
    await t.repos.add({ source: repo.dir, name: 'shop' });
    await index('shop');
  });

  afterAll(async () => {
    await t?.cleanup();
    repo?.cleanup();
  });

  it('resolves imports: relative, tsconfig aliases, Python packages, Go modules, Java, external modules', async () => {
    expect(await imports('shop')).toEqual([
      'go/cmd/main.go -> go/store/store.go',
      'java/src/main/java/com/shop/Service.java -> java/src/main/java/com/shop/Repo.java',
      'py/pkg/api.py -> py/pkg/core.py',
      'src/app.ts -> lib/helper.ts',
      'src/app.ts -> module:fs',
      'src/app.ts -> src/util/math.ts',
    ]);
  });

  it('writes calls within files and through imports', async () => {
    expect(await edges('CALLS', 'shop')).toEqual([
      'App.run -> add',
      'App.run -> helper',
      'App.run -> square',
      'Repo.save -> Repo.check',
      'Save -> validate',
      'Service -> Repo', // `new Repo()` in a field initializer: the class instantiates Repo
      'Service.run -> Repo.save',
      'compute -> double',
      'handle -> compute',
      'main -> Save',
      'square -> multiply',
    ]);
  });

  it('writes extends and implements', async () => {
    expect(await edges('EXTENDS', 'shop')).toEqual(['App -> Base']);
    expect(await edges('IMPLEMENTS', 'shop')).toEqual(['App -> Runnable']);
  });

  it('answers symbol, callers, callees, dependency and path queries, naming the commit', async () => {
    const head = repo.head();
    const found = await graph.findSymbol('squ', { prefix: true });
    expect(found.results.map((s) => `${s.path}:${s.startLine} ${s.kind} ${s.qualifiedName}`)).toEqual(['src/util/math.ts:5 function square']);
    expect(found.commits).toEqual([{ repository: 'shop', branch: 'main', commit: head }]);

    const callers = await graph.callers('multiply', { depth: 3 });
    expect(callers.results.map((s) => `${s.depth} ${s.qualifiedName}`)).toEqual(['1 square', '2 App.run']);
    expect(callers.commits[0]?.commit).toBe(head);

    const callees = await graph.callees('App.run');
    expect(callees.results.map((s) => s.qualifiedName).sort()).toEqual(['add', 'helper', 'square']);

    const deps = await graph.dependencies('src/app.ts');
    expect(deps.results.map((d) => d.path ?? `module:${d.module}`).sort()).toEqual(['lib/helper.ts', 'module:fs', 'src/util/math.ts']);
    expect(deps.commit).toBe(head);
    const dependents = await graph.dependents('src/util/math.ts');
    expect(dependents.results.map((d) => d.path)).toEqual(['src/app.ts']);

    const path = await graph.path('App.run', 'multiply');
    expect(path.path.map((s) => s.qualifiedName)).toEqual(['App.run', 'square', 'multiply']);

    const arch = await graph.architecture('shop');
    expect(arch.folders.map((f) => f.folder)).toEqual(['go', 'java', 'lib', 'py', 'src']);
    expect(arch.edges).toContainEqual({ from: 'src', to: 'lib', imports: 1 });
    expect(arch.externalModules).toContainEqual({ module: 'fs', importers: 1 });
  });

  it('rejects bad input with a clear error', async () => {
    await expect(graph.callers('x', { depth: 9 })).rejects.toThrow('depth must be a whole number from 1 to 5');
    await expect(graph.findSymbol('x', { repositories: ['nope'] })).rejects.toThrow('no repository named "nope"');
    await expect(graph.callers('doesNotExist')).rejects.toThrow('no symbol named "doesNotExist"');
    await expect(graph.dependencies('no/such/file.ts')).rejects.toThrow('no indexed file no/such/file.ts');
  });

  it('follows edits, renames and deletions incrementally', async () => {
    repo.write({
      'src/util/math.ts': FIXTURE['src/util/math.ts']!.replace('return multiply(x, x);', 'return x ** 2;'),
    });
    repo.git('mv', 'lib/helper.ts', 'lib/helpers.ts');
    repo.write({ 'src/app.ts': FIXTURE['src/app.ts']!.replace("'@lib/helper'", "'@lib/helpers'") });
    repo.remove('py/pkg/api.py');
    repo.commit('edit, rename, delete');
    await index('shop');

    const calls = await edges('CALLS', 'shop');
    expect(calls).not.toContain('square -> multiply');
    expect(calls).not.toContain('handle -> compute');
    expect(calls).toContain('App.run -> helper');
    const imps = await imports('shop');
    expect(imps).toContain('src/app.ts -> lib/helpers.ts');
    expect(imps.some((i) => i.includes('lib/helper.ts'))).toBe(false);
    expect(imps.some((i) => i.startsWith('py/pkg/api.py'))).toBe(false);
    const stale = await t.platform.graph.read<{ n: number }>(
      `MATCH (f:File {repoId: $repoId}) WHERE f.path IN ['py/pkg/api.py', 'lib/helper.ts'] RETURN count(f) AS n`,
      { repoId: t.platform.graph.repoKey((await t.platform.repositories.findByName('shop'))!.id) },
    );
    expect(stale[0]?.n).toBe(0);
  });

  it('stores deep paths and long names that would not fit in an index entry', async () => {
    // Neo4j's index entries hold a few KB; generated code easily has longer paths and qualified names.
    const deepDir = Array.from({ length: 24 }, (_, i) => `level${i}_${'d'.repeat(80)}`).join('/');
    const cls = `Generated${'N'.repeat(240)}`;
    const method = `handle${'M'.repeat(240)}`;
    const tooLong = `x${'y'.repeat(300)}`; // no identifier this long is a name anyone searches for
    repo.write({
      [`${deepDir}/deep.ts`]: [
        `import { add } from '${'../'.repeat(24)}src/util/math';`,
        `export class ${cls} {`,
        `  ${method}() { return add(1, 2); }`,
        '}',
        `export function ${tooLong}() { return add(3, 4); }`,
        '',
      ].join('\n'),
    });
    repo.commit('deep');
    const result = await index('shop');
    expect(result.filesChanged).toBe(1);

    const deps = await graph.dependencies(`${deepDir}/deep.ts`);
    expect(deps.results.map((d) => d.path)).toContain('src/util/math.ts');
    expect(await edges('CALLS', 'shop')).toContain(`${cls}.${method} -> add`);
    expect((await graph.findSymbol(tooLong)).results).toEqual([]);

    repo.remove(`${deepDir}/deep.ts`);
    repo.commit('deep gone');
    await index('shop');
    expect((await graph.findSymbol(cls)).results).toEqual([]);
  });

  it('keeps two repositories and two branches apart', async () => {
    repo.git('checkout', '--quiet', '-b', 'feature');
    repo.write({ 'src/feature.ts': "import { add } from './util/math';\n\nexport function featureOnly() {\n  return add(1, 1);\n}\n" });
    repo.commit('feature');
    repo.git('checkout', '--quiet', 'main');
    await index('shop', 'feature');
    await t.repos.add({ source: repo.dir, name: 'shop-copy' });
    await index('shop-copy');

    expect(await edges('CALLS', 'shop', 'feature')).toContain('featureOnly -> add');
    expect(await edges('CALLS', 'shop', 'main')).not.toContain('featureOnly -> add');
    expect(await edges('CALLS', 'shop-copy')).not.toContain('featureOnly -> add');
    // Queries read each repository's default branch, and only the repositories asked for.
    expect((await graph.findSymbol('featureOnly')).results).toEqual([]);
    const both = await graph.findSymbol('compute');
    expect(both.results.map((s) => s.repository).sort()).toEqual(['shop', 'shop-copy']);
    const one = await graph.findSymbol('compute', { repositories: ['shop-copy'] });
    expect(one.results.map((s) => s.repository)).toEqual(['shop-copy']);

    // Removal finds a repository's nodes by key prefix: every symbol, file (placeholders too) and module goes.
    const nodesOf = async (repoName: string) => {
      const r = (await t.platform.repositories.findByName(repoName))!;
      const rows = await t.platform.graph.read<{ label: string; n: number }>(
        `MATCH (n) WHERE (n:Symbol OR n:File OR n:Module) AND n.repoId = $repoId RETURN labels(n)[0] AS label, count(*) AS n ORDER BY label`,
        { repoId: t.platform.graph.repoKey(r.id) },
      );
      return Object.fromEntries(rows.map((x) => [x.label, Number(x.n)]));
    };
    const copyNodes = await nodesOf('shop-copy');
    expect(copyNodes).toMatchObject({ File: expect.any(Number), Module: expect.any(Number), Symbol: expect.any(Number) });
    const copyId = (await t.platform.repositories.findByName('shop-copy'))!.id;
    const shopBefore = await nodesOf('shop');
    await t.repos.remove('shop-copy');
    expect((await graph.findSymbol('compute')).results.map((s) => s.repository)).toEqual(['shop']);
    const left = await t.platform.graph.read<{ n: number }>(`MATCH (n) WHERE n.repoId = $repoId OR n.id = $repoId RETURN count(n) AS n`, {
      repoId: t.platform.graph.repoKey(copyId),
    });
    expect(Number(left[0]!.n)).toBe(0);
    expect(await nodesOf('shop')).toEqual(shopBefore);
  });
});
