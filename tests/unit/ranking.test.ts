import { describe, expect, it } from 'vitest';
import { fileKind, kindsAskedFor } from '../../shared/search/file-kind.ts';
import { withFileEvidence, DEFAULT_RANKING, fuse, queryIdentifiers, rescore, type Candidate } from '../../shared/search/ranking.ts';
import { semanticText, semanticTextHash, SEMANTIC_BODY_CHARS } from '../../shared/semantic/semantic-text.ts';
import { scoresOf } from '../../bench/lib/retrieval.ts';

describe('file kinds', () => {
  it.each([
    ['lib/router/index.js', 'code'],
    ['src/server.ts', 'code'],
    ['requests/sessions.py', 'code'],
    ['chi/middleware/throttle.go', 'code'],
    ['types/index.d.ts', 'types'],
    ['pkg/module.d.mts', 'types'],
    ['requests/api.pyi', 'types'],
    ['test/router.test.js', 'test'],
    ['src/__tests__/parse.ts', 'test'],
    ['pkg/parse.spec.ts', 'test'],
    ['tests/test_sessions.py', 'test'],
    ['urllib3/test_util.py', 'test'],
    ['chi/mux_test.go', 'test'],
    ['src/test/java/FooTest.java', 'test'],
    ['README.md', 'docs'],
    ['docs/guide/index.js', 'docs'],
    ['CHANGELOG', 'docs'],
    ['validator/doc.go', 'docs'],
    ['validator/docs.go', 'code'],
    ['mimetype/testdata/sample.json', 'test'],
    ['examples/basic/app.js', 'example'],
    ['chi/_examples/rest/main.go', 'example'],
    ['benchmarks/parse.js', 'bench'],
    ['bench/index.bench.ts', 'bench'],
    ['thread-stream/bench.js', 'bench'],
    ['pkg/benchmarks.py', 'bench'],
    ['lib/benchmarking-utils.js', 'code'],
    ['package.json', 'config'],
    ['.eslintrc', 'config'],
    ['tsconfig.json', 'config'],
  ])('%s is %s', (p, kind) => expect(fileKind(p)).toBe(kind));

  it('reads which kinds a question asks for', () => {
    expect([...kindsAskedFor('where are the tests for redirects')]).toEqual(['test']);
    expect([...kindsAskedFor('example of a custom logger')]).toEqual(['example']);
    expect(kindsAskedFor('how are redirects followed').size).toBe(0);
  });
});

describe('query identifiers', () => {
  it('takes words written as code, with the last part of a dotted name', () => {
    expect([...queryIdentifiers('where is parseQuery called from Router.handle()')].sort()).toEqual(['handle', 'parsequery', 'router.handle']);
    expect([...queryIdentifiers('read_config and get_user_name')].sort()).toEqual(['get_user_name', 'read_config']);
  });
  it('names nothing in plain English', () => {
    expect(queryIdentifiers('generate a unique id for each incoming request').size).toBe(0);
    expect(queryIdentifiers('How does the Server decide').size).toBe(0);
  });
});

describe('fusion and re-scoring', () => {
  it('fuses ranked lists by weight, each retriever counted once per id', () => {
    const fused = fuse({ model: ['a', 'b', 'a'], text: ['b', 'c'] }, { ...DEFAULT_RANKING, rrfK: 0, model: 1, text: 0.5 });
    expect(fused.get('a')).toEqual({ fused: 1, ranks: { model: 1 } });
    expect(fused.get('b')).toEqual({ fused: 1 / 2 + 0.5, ranks: { model: 2, text: 1 } });
    expect(fused.get('c')!.ranks).toEqual({ text: 2 });
  });

  const candidate = (id: string, path: string, fused: number, extra: Partial<Candidate> = {}): Candidate => ({ id, path, symbol: null, ranks: { text: 1 }, fused, ...extra });

  it('ranks implementation above tests, docs and declarations that repeat the words, unless asked for them', () => {
    const cands = [candidate('t', 'test/router.test.js', 1), candidate('d', 'index.d.ts', 0.95), candidate('c', 'lib/router.js', 0.6)];
    const order = (wanted = new Set<never>()) =>
      rescore(cands, { weights: DEFAULT_RANKING, wantedKinds: wanted, identifiers: new Set() })
        .sort((a, b) => b.score - a.score)
        .map((c) => c.id);
    expect(order()).toEqual(['c', 't', 'd']);
    expect(order(new Set(['test']) as never)).toEqual(['t', 'c', 'd']);
    const demoted = rescore(cands, { weights: DEFAULT_RANKING, wantedKinds: new Set(), identifiers: new Set() }).find((c) => c.id === 't')!;
    expect(demoted.explain.boosts).toEqual([`non-code:test ×${DEFAULT_RANKING.nonCode}`]);
  });

  it('lifts a chunk that defines an identifier the query names, and says so', () => {
    const cands = [candidate('a', 'a.ts', 1, { symbol: 'helper' }), candidate('b', 'b.ts', 0.8, { symbol: 'parseQuery, formatQuery' })];
    const out = rescore(cands, { weights: DEFAULT_RANKING, wantedKinds: new Set(), identifiers: queryIdentifiers('parseQuery') }).sort((x, y) => y.score - x.score);
    expect(out[0]!.id).toBe('b');
    expect(out[0]!.explain.boosts).toEqual(['symbol:parseQuery']);
  });

  it("adds the model's similarity, spread over the candidates, to the fused rank", () => {
    const cands = [candidate('a', 'a.ts', 1, { similarity: 0.5 }), candidate('b', 'b.ts', 0.7, { similarity: 0.8 })];
    const out = rescore(cands, { weights: DEFAULT_RANKING, wantedKinds: new Set(), identifiers: new Set() }).sort((x, y) => y.score - x.score);
    expect(out.map((c) => c.id)).toEqual(['b', 'a']);
    expect(out[0]!.explain.similarity).toBe(0.8);
    // Without the model signal the fused order stands.
    const plain = rescore(cands, { weights: { ...DEFAULT_RANKING, similarity: 0 }, wantedKinds: new Set(), identifiers: new Set() }).sort((x, y) => y.score - x.score);
    expect(plain.map((c) => c.id)).toEqual(['a', 'b']);
  });

  it('lifts files the code graph shows many others importing', () => {
    const cands = [candidate('a', 'leaf.ts', 1), candidate('b', 'core.ts', 0.95)];
    const importers = (c: Candidate) => (c.path === 'core.ts' ? 30 : 0);
    const out = rescore(cands, { weights: DEFAULT_RANKING, wantedKinds: new Set(), identifiers: new Set(), importers }).sort((x, y) => y.score - x.score);
    expect(out[0]!.id).toBe('b');
    expect(out[0]!.explain.boosts).toEqual(['central:30 importers']);
  });
});

describe('evidence from several places in a file', () => {
  const hit = (id: string, score: number) => ({ id, score, explain: { ranks: {}, fused: 0, boosts: [] as string[] } });
  const file = (c: { id: string }) => c.id.split('#')[0]!;

  it("lifts a file that answers in two places above one with a single, slightly better chunk", () => {
    const scored = [hit('lucky.ts#1', 1.0), hit('answer.ts#1', 0.95), hit('answer.ts#2', 0.8), hit('other.ts#1', 0.5)];
    const out = withFileEvidence(scored, file, 0.15).sort((a, b) => b.score - a.score);
    expect(out.map((c) => c.id)).toEqual(['answer.ts#1', 'lucky.ts#1', 'answer.ts#2', 'other.ts#1']);
    expect(out[0]!.score).toBeCloseTo(0.95 + 0.15 * 0.8);
    expect(out[0]!.explain.boosts).toEqual(['file:+0.12']);
    // A file with one candidate is left as it was, and so is everything at weight 0.
    expect(out.find((c) => c.id === 'lucky.ts#1')!.score).toBe(1.0);
    expect(withFileEvidence(scored, file, 0)).toBe(scored);
  });
});

describe('what the model reads of a chunk', () => {
  it('is the path and symbol over the first lines of the chunk', () => {
    const text = semanticText({ path: 'lib/router/index.js', symbol: 'handle', kind: 'method', content: 'x'.repeat(5000) });
    expect(text.startsWith('lib/router/index.js\nmethod handle\nxxx')).toBe(true);
    expect(text.length).toBe('lib/router/index.js\nmethod handle\n'.length + SEMANTIC_BODY_CHARS);
    expect(semanticText({ path: 'a.md', symbol: null, kind: 'window', content: 'hello' })).toBe('a.md\nhello');
  });
  it('is keyed by its own hash: equal texts share an embedding, any change does not', () => {
    expect(semanticTextHash('a')).toBe(semanticTextHash('a'));
    expect(semanticTextHash('a')).not.toBe(semanticTextHash('b'));
  });
});

describe('benchmark scores', () => {
  it('computes recall@k, MRR and binary nDCG@10 from first-relevant ranks', () => {
    const s = scoresOf([1, 3, 12, null]);
    expect(s.recallAt1).toBe(0.25);
    expect(s.recallAt5).toBe(0.5);
    expect(s.recallAt10).toBe(0.5);
    expect(s.mrr).toBeCloseTo((1 + 1 / 3 + 1 / 12) / 4, 10);
    expect(s.ndcgAt10).toBeCloseTo((1 + 1 / Math.log2(4)) / 4, 10);
  });
});
