import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGraphQueryService, type GraphQueryService } from '../../shared/graph/graph-query.service.ts';
import { createGitFixture, type GitFixture } from '../helpers/git-fixture.ts';
import { openTestPlatform, waitForJob, type TestPlatform } from '../helpers/platform.ts';

/** Small repositories in each language, with the cases name-based resolution gets wrong most easily. */
const FIXTURE: Record<string, string> = {
  'tsconfig.json': '{ "compilerOptions": { "baseUrl": ".", "paths": { "@/*": ["ts/*"] } } }\n',
  'ts/a.ts': 'export function run() { return 1; }\nexport function only() { return 2; }\nexport default function def() { return 3; }\n',
  'ts/b.ts': 'export function run() { return 10; }\n',
  'ts/lib/index.ts': "export * from './inner';\nexport { orig as renamed } from './inner';\n",
  'ts/lib/inner.ts': 'export function deep() { return 1; }\nexport function orig() { return 2; }\n',
  'ts/main.ts': [
    "import { run as runA, only } from './a';",
    "import def from './a';",
    "import { deep, renamed } from './lib';",
    "import * as B from '@/b';",
    'export class Shape { area() { return 0; } describe() { return this.area(); } }',
    'export class Square extends Shape { area() { return 4; } total() { return this.area() + runA() + only() + def() + deep() + renamed() + extra() + B.run(); } }',
    '',
  ].join('\n'),
  'js/util.js': 'function helper() { return 1; }\nmodule.exports = { helper };\n',
  'js/app.js': "const { helper } = require('./util');\nfunction start() { return helper(); }\nmodule.exports = { start };\n",
  'js/esm.mjs': "import { helper } from './util.js';\nexport function go() { return helper(); }\n",
  'py/pkg/__init__.py': 'from .core import compute\n',
  'py/pkg/core.py': 'def compute(x):\n    return x\n',
  'py/pkg/tools.py': 'def tool():\n    return 1\n',
  'py/pkg/api.py': [
    'from . import tools',
    'from pkg import compute',
    '',
    'class Api:',
    '    def get(self):',
    '        return self.load()',
    '',
    '    def load(self):',
    '        return tools.tool() + compute(1)',
    '',
  ].join('\n'),
  'go.mod': 'module example.com/shop\n\ngo 1.22\n',
  'go/store/store.go': 'package store\n\ntype Disk struct{}\ntype Mem struct{}\n\nfunc (d *Disk) Save() int { return helper() }\nfunc (m *Mem) Save() int { return 2 }\n',
  'go/store/helper.go': 'package store\n\nfunc helper() int { return 1 }\n',
  'go/cmd/main.go': 'package main\n\nimport "example.com/shop/go/store"\n\nfunc main() {\n\tm := &store.Mem{}\n\tm.Save()\n}\n',
  'java/com/shop/Base.java': 'package com.shop;\n\npublic abstract class Base {\n  public void log() {}\n}\n',
  'java/com/shop/Util.java': 'package com.shop;\n\npublic class Util {\n  public static int twice(int x) { return x * 2; }\n}\n',
  'java/com/shop/Repo.java': 'package com.shop;\n\nimport static com.shop.Util.twice;\n\npublic class Repo extends Base implements Store {\n  public void save() { log(); twice(1); }\n}\n',
  'java/com/shop/Store.java': 'package com.shop;\n\npublic interface Store {\n  void save();\n}\n',
  'rust/src/lib.rs': 'mod shapes;\nuse crate::shapes::{Area, Circle};\n\npub fn total(c: &Circle) -> f64 {\n    c.area()\n}\n',
  'rust/src/shapes.rs': 'pub trait Area {\n    fn area(&self) -> f64;\n}\n\npub struct Circle;\n\nimpl Area for Circle {\n    fn area(&self) -> f64 {\n        self.radius()\n    }\n}\n\nimpl Circle {\n    fn radius(&self) -> f64 { 1.0 }\n}\n',
  'cs/Shop/IRepo.cs': 'namespace Shop;\n\npublic interface IRepo { void Save(); }\n',
  'cs/Shop/Repo.cs': 'namespace Shop;\n\npublic partial class Repo : IRepo {\n  public void Save() { Check(); }\n}\n',
  'cs/Shop/Repo.Check.cs': 'namespace Shop;\n\npublic partial class Repo {\n  void Check() {}\n}\n',
  'cs/App/Program.cs': 'using Shop;\n\nnamespace App;\n\npublic class Program {\n  public static void Main() { new Repo().Save(); }\n}\n',
};

describe('code graph correctness per language', () => {
  let t: TestPlatform;
  let graph: GraphQueryService;
  let repo: GitFixture;

  async function index(name: string) {
    const { jobId } = await t.repos.requestIndex(name, {});
    return waitForJob(t.platform.queues.queues.index, jobId);
  }
  async function rows(cypher: string) {
    const r = (await t.platform.repositories.findByName('poly'))!;
    return t.platform.graph.read<{ x: string }>(cypher, { repoId: t.platform.graph.repoKey(r.id), branch: 'main' });
  }
  const calls = async (rel = 'CALLS') =>
    (await rows(`MATCH (a:Symbol {repoId: $repoId, branch: $branch})-[:${rel}]->(b:Symbol) RETURN a.path + ':' + a.qualifiedName + ' -> ' + b.path + ':' + b.qualifiedName AS x`)).map((r) => r.x).sort();
  const imports = async () =>
    (await rows(`MATCH (a:File {repoId: $repoId, branch: $branch})-[:IMPORTS]->(b) RETURN a.path + ' -> ' + coalesce(b.path, 'module:' + b.name) AS x`)).map((r) => r.x).sort();

  beforeAll(async () => {
    t = await openTestPlatform();
    await t.startWorkers();
    graph = createGraphQueryService(t.platform);
    repo = createGitFixture();
    repo.write(FIXTURE);
    repo.commit('fixture');
    await t.repos.add({ source: repo.dir, name: 'poly' });
    await index('poly');
  });

  afterAll(async () => {
    await t?.cleanup();
    repo?.cleanup();
  });

  it('resolves `this.method()` to the method of the caller\'s own class, not a same-named one elsewhere in the file', async () => {
    const edges = await calls();
    expect(edges).toContain('ts/main.ts:Shape.describe -> ts/main.ts:Shape.area');
    expect(edges).not.toContain('ts/main.ts:Shape.describe -> ts/main.ts:Square.area');
    expect(edges).toContain('ts/main.ts:Square.total -> ts/main.ts:Square.area');
    expect(edges).toContain('py/pkg/api.py:Api.get -> py/pkg/api.py:Api.load');
  });

  it('follows re-exports: `export * from` in an index file, names re-exported by an __init__.py', async () => {
    expect(await imports()).toContain('ts/main.ts -> ts/lib/index.ts');
    const edges = await calls();
    expect(edges).toContain('ts/main.ts:Square.total -> ts/lib/inner.ts:deep');
    expect(edges).toContain('py/pkg/api.py:Api.load -> py/pkg/core.py:compute');
    const callers = await graph.callers('deep');
    expect(callers.results.map((r) => r.qualifiedName)).toEqual(['Square.total']);
  });

  it('resolves aliased, default, CommonJS and ESM imports and same-file inheritance', async () => {
    const edges = await calls();
    for (const e of ['ts/main.ts:Square.total -> ts/a.ts:run', 'ts/main.ts:Square.total -> ts/a.ts:def', 'js/app.js:start -> js/util.js:helper', 'js/esm.mjs:go -> js/util.js:helper']) {
      expect(edges).toContain(e);
    }
    expect(await calls('EXTENDS')).toContain('ts/main.ts:Square -> ts/main.ts:Shape');
    expect(await calls('IMPLEMENTS')).toContain('rust/src/shapes.rs:Circle -> rust/src/shapes.rs:Area');
  });

  it('re-resolves files importing a changed file through a re-exporting index', async () => {
    // Only inner.ts changes: main.ts imports it through lib/index.ts, and its call to extra() must now resolve.
    repo.write({ 'ts/lib/inner.ts': `${FIXTURE['ts/lib/inner.ts']}export function extra() { return 3; }\n` });
    repo.commit('extra');
    await index('poly');
    expect(await calls()).toContain('ts/main.ts:Square.total -> ts/lib/inner.ts:extra');

    repo.remove('ts/lib/inner.ts');
    repo.commit('inner gone');
    await index('poly');
    const edges = await calls();
    expect(edges.some((e) => e.includes('ts/lib/inner.ts'))).toBe(false);
    expect((await rows(`MATCH (s:Symbol {repoId: $repoId, branch: $branch, path: 'ts/lib/inner.ts'}) RETURN s.name AS x`)).length).toBe(0);
  });

  it('answers odd names quickly and clearly', async () => {
    for (const odd of ['.*', "a'b", 'a`) DETACH DELETE n //', '$name', '[(]']) {
      expect((await graph.findSymbol(odd)).results).toEqual([]);
      await expect(graph.callers(odd)).rejects.toThrow(`no symbol named "${odd}"`);
    }
    const common = await graph.findSymbol('run');
    expect(common.results.map((r) => r.path).sort()).toEqual(['ts/a.ts', 'ts/b.ts']);
  });
});
