/**
 * What a file is for, read from its path: the code that implements
 * something, or material around it (tests, docs, examples, benchmarks, type
 * declarations, configuration). A plain-English question ("where are retries
 * backed off") is nearly always after the implementation, while tests, docs
 * and declarations repeat its words more often than the code does; search
 * ranks them below code unless the query, or a `kind` filter, asks for them.
 */
export const FILE_KINDS = ['code', 'test', 'docs', 'types', 'example', 'bench', 'config'] as const;
export type FileKind = (typeof FILE_KINDS)[number];

const TYPES = /\.d\.[cm]?ts$|\.pyi$/i;
const DOCS_EXT = /\.(md|mdx|markdown|rst|adoc|txt|rdoc)$/i;
const DOCS_NAME = /(^|\/)(readme|changelog|changes|history|license|licence|contributing|authors|notice|code_of_conduct|security)(\.[a-z]+)?$/i;
const DOCS_DIR = /(^|\/)(docs?|documentation|man|website)\//i;
/** Go's package documentation: by convention a `doc.go` holds the package comment and no code. */
const DOCS_CODE = /(^|\/)doc\.go$/;
const TEST_DIR = /(^|\/)(__tests__|__mocks__|tests?|spec|specs|e2e|testing|testdata|test-utils|fixtures?)\//i;
const TEST_NAME = /(^|\/)(test_[^/]*\.py|[^/]*_test\.(py|go|rb|exs?)|[^/]*[._-](test|spec|tests)\.[a-z]+|conftest\.py|[^/]*Tests?\.(java|kt|cs|swift|scala))$/i;
const EXAMPLE_DIR = /(^|\/)(_?examples?|demos?|samples?|sandbox|playground)\//i;
const BENCH = /(^|\/)(bench|benchmarks?|perf)\/|[._-]bench(mark)?\.[a-z]+$|(^|\/)bench(mark)?s?\.[a-z]+$/i;
const CONFIG = /\.(json|ya?ml|toml|ini|cfg|conf|lock|properties|xml|plist)$|(^|\/)(\.[^/]+rc|[^/]*\.config\.[cm]?[jt]s|dockerfile|makefile)$/i;

export function fileKind(filePath: string): FileKind {
  if (TYPES.test(filePath)) return 'types';
  if (TEST_NAME.test(filePath) || TEST_DIR.test(filePath)) return 'test';
  if (BENCH.test(filePath)) return 'bench';
  if (EXAMPLE_DIR.test(filePath)) return 'example';
  if (DOCS_EXT.test(filePath) || DOCS_NAME.test(filePath) || DOCS_DIR.test(filePath) || DOCS_CODE.test(filePath)) return 'docs';
  if (CONFIG.test(filePath)) return 'config';
  return 'code';
}

/** Words in a query that ask for material other than code, by the kind they ask for. */
const ASKS: Array<[FileKind, RegExp]> = [
  ['test', /\b(tests?|testing|spec|specs|unit tests?|test cases?|fixtures?|mocks?)\b/i],
  ['docs', /\b(docs?|documentation|readme|changelog|guide|tutorial|licen[cs]e)\b/i],
  ['types', /\b(type declarations?|typings?|\.d\.ts|type definitions?|stubs?)\b/i],
  ['example', /\b(examples?|demos?|samples?|usage)\b/i],
  ['bench', /\b(bench(mark)?s?|performance tests?)\b/i],
  ['config', /\b(config(uration)? files?|package\.json|settings files?|ya?ml|json files?)\b/i],
];

/** The kinds a query asks for by name (a question about tests may rank tests first). */
export function kindsAskedFor(query: string): Set<FileKind> {
  return new Set(ASKS.filter(([, re]) => re.test(query)).map(([k]) => k));
}
