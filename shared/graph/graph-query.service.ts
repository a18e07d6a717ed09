import { badRequest, notFound } from '../errors.ts';
import type { Platform } from '../platform.ts';

/**
 * Questions about the code graph: where is a symbol, who calls it, what does
 * it call, what does a file depend on, what depends on it, how are two
 * symbols connected, how is a repository laid out. Every answer names the
 * commit it comes from; depth and result sizes are bounded.
 */

export const MAX_DEPTH = 5;
export const MAX_PATH_DEPTH = 10;
export const MAX_RESULTS = 200;

export interface GraphTarget {
  repositoryId: number;
  repository: string;
  branch: string;
  commit: string;
}

export interface SymbolRef {
  repository: string;
  path: string;
  name: string;
  qualifiedName: string;
  kind: string;
  startLine: number;
  endLine: number;
}

export interface Related extends SymbolRef {
  depth: number;
}

export interface GraphScopeInput {
  /** Repository names; every repository of the allowed instances when omitted. */
  repositories?: string[];
  instances?: string[];
}

interface SymbolRow {
  repoId: string;
  path: string;
  name: string;
  qualifiedName: string;
  kind: string;
  startLine: number;
  endLine: number;
}

function checkDepth(depth: number | undefined, max: number, fallback: number): number {
  const d = depth ?? fallback;
  if (!Number.isInteger(d) || d < 1 || d > max) throw badRequest(`depth must be a whole number from 1 to ${max}, not ${depth}`, 'invalid_depth');
  return d;
}

function checkLimit(limit: number | undefined, fallback = 50): number {
  const l = limit ?? fallback;
  if (!Number.isInteger(l) || l < 1 || l > MAX_RESULTS) throw badRequest(`limit must be a whole number from 1 to ${MAX_RESULTS}, not ${limit}`, 'invalid_limit');
  return l;
}

/** Longest symbol name a query takes: a few levels of nesting of long names. */
export const MAX_SYMBOL_QUERY_LENGTH = 1024;
/** Longest repository-relative path a query takes (Linux's PATH_MAX). */
export const MAX_PATH_QUERY_LENGTH = 4096;

function checkName(name: string, what: 'symbol' | 'path' | 'repository' = 'symbol'): string {
  const n = name.trim();
  const max = what === 'path' ? MAX_PATH_QUERY_LENGTH : MAX_SYMBOL_QUERY_LENGTH;
  if (!n) throw badRequest(`${what} must not be empty`, 'invalid_name');
  if (n.length > max) throw badRequest(`${what} must be at most ${max} characters`, 'invalid_name');
  return n;
}

export function createGraphQueryService(platform: Platform) {
  const { graph, repositories } = platform;

  /** The repositories asked for, each at its default branch's indexed commit. */
  async function targets(scope: GraphScopeInput): Promise<GraphTarget[]> {
    const all = await repositories.list(scope.instances ? { instances: scope.instances } : {});
    if (scope.repositories?.length) {
      const missing = scope.repositories.filter((n) => !all.some((r) => r.name === n));
      if (missing.length > 0) throw notFound(`no repository named ${missing.map((m) => `"${m}"`).join(', ')}`, 'repository_not_found');
    }
    const wanted = scope.repositories?.length ? all.filter((r) => scope.repositories!.includes(r.name)) : all;
    return wanted.flatMap((r) => {
      const b = r.branches.find((x) => x.branch === r.defaultBranch && x.indexedCommit);
      return b ? [{ repositoryId: r.id, repository: r.name, branch: b.branch, commit: b.indexedCommit! }] : [];
    });
  }

  const params = (t: GraphTarget[]) => ({ targets: t.map((x) => ({ repoId: graph.repoKey(x.repositoryId), branch: x.branch })) });
  /** Targets by their Neo4j repository id, to name the repository of each row. */
  const index = (t: GraphTarget[]) => new Map(t.map((x) => [graph.repoKey(x.repositoryId), x]));

  function toRef(row: SymbolRow, byId: Map<string, GraphTarget>): SymbolRef {
    return {
      repository: byId.get(row.repoId)?.repository ?? String(row.repoId),
      path: row.path,
      name: row.name,
      qualifiedName: row.qualifiedName,
      kind: row.kind,
      startLine: row.startLine,
      endLine: row.endLine,
    };
  }

  const SYMBOL_MAP = `repoId: s.repoId, path: s.path, name: s.name, qualifiedName: s.qualifiedName, kind: s.kind, startLine: s.startLine, endLine: s.endLine`;
  const SYMBOL_FIELDS = `s.repoId AS repoId, s.path AS path, s.name AS name, s.qualifiedName AS qualifiedName, s.kind AS kind, s.startLine AS startLine, s.endLine AS endLine`;

  /**
   * Matches a symbol by name or qualified name (`Class.method`), optionally in
   * one file. A UNION of two exact lookups, not an OR: each uses its index,
   * where `name = $x OR qualifiedName = $x` would scan every symbol.
   */
  const symbolsNamed = (variable: string, param: string) => `CALL {
      WITH t MATCH (${variable}:Symbol {repoId: t.repoId, branch: t.branch, name: ${param}}) RETURN ${variable}
      UNION
      WITH t MATCH (${variable}:Symbol {repoId: t.repoId, branch: t.branch, qualifiedName: ${param}}) RETURN ${variable}
    }`;
  const ROOT_MATCH = `UNWIND $targets AS t
    ${symbolsNamed('root', '$name')}
    WITH root WHERE $path IS NULL OR root.path = $path`;

  async function related(direction: 'callers' | 'callees', symbol: string, options: GraphScopeInput & { depth?: number; limit?: number; path?: string }) {
    const name = checkName(symbol);
    const depth = checkDepth(options.depth, MAX_DEPTH, 1);
    const limit = checkLimit(options.limit);
    const t = await targets(options);
    const byId = index(t);
    const pattern = direction === 'callers' ? `(s:Symbol)-[:CALLS*1..${depth}]->(root)` : `(root)-[:CALLS*1..${depth}]->(s:Symbol)`;
    // One round trip: the symbols named, then the walk from them (collected, so no match still answers its roots).
    const [answer] = await graph.read<{ roots: SymbolRow[]; results: Array<SymbolRow & { depth: number }> }>(
      `${ROOT_MATCH}
       WITH collect(DISTINCT root)[..${MAX_RESULTS}] AS roots
       CALL {
         WITH roots
         UNWIND roots AS root
         MATCH p = ${pattern}
         WHERE s <> root
         WITH s, min(length(p)) AS depth
         ORDER BY depth, s.path, s.startLine
         LIMIT ${limit}
         RETURN collect({${SYMBOL_MAP}, depth: depth}) AS results
       }
       RETURN [s IN roots | {${SYMBOL_MAP}}] AS roots, results`,
      { ...params(t), name, path: options.path ?? null },
    );
    const roots = answer?.roots ?? [];
    const rows = answer?.results ?? [];
    if (roots.length === 0) throw notFound(`no symbol named "${name}"${options.path ? ` in ${options.path}` : ''}`, 'symbol_not_found');
    return {
      symbol: name,
      depth,
      matches: roots.map((r) => toRef(r, byId)),
      results: rows.map((r) => ({ ...toRef(r, byId), depth: r.depth })),
      commits: t.filter((x) => roots.some((r) => r.repoId === graph.repoKey(x.repositoryId))).map(({ repository, branch, commit }) => ({ repository, branch, commit })),
    };
  }

  async function fileRelations(direction: 'dependencies' | 'dependents', filePath: string, options: GraphScopeInput & { repository?: string; depth?: number; limit?: number }) {
    const depth = checkDepth(options.depth, MAX_DEPTH, 1);
    const limit = checkLimit(options.limit);
    const t = await targets(options.repository ? { ...options, repositories: [options.repository] } : options);
    const p = checkName(filePath, 'path').replace(/^\.?\//, '');
    const pattern = direction === 'dependencies' ? `(f)-[:IMPORTS*1..${depth}]->(x)` : `(x:File)-[:IMPORTS*1..${depth}]->(f)`;
    // One round trip: the file in each repository asked for, then the walk when exactly one has it.
    const [answer] = await graph.read<{ repoIds: string[]; results: Array<{ kind: string; name: string; depth: number }> }>(
      `UNWIND $keys AS key
       MATCH (f:File {key: key}) WHERE NOT coalesce(f.placeholder, false)
       WITH collect(f) AS files
       CALL {
         WITH files
         WITH files WHERE size(files) = 1
         UNWIND files AS f
         MATCH p = ${pattern}
         WHERE x <> f
         WITH x, min(length(p)) AS depth
         WITH CASE WHEN x:Module THEN 'module' ELSE 'file' END AS kind, coalesce(x.path, x.name) AS name, depth
         ORDER BY depth, kind, name
         LIMIT ${limit}
         RETURN collect({kind: kind, name: name, depth: depth}) AS results
       }
       RETURN [f IN files | f.repoId] AS repoIds, results`,
      { keys: t.map((x) => graph.fileKey({ repoId: x.repositoryId, branch: x.branch }, p)) },
    );
    const repoIds = answer?.repoIds ?? [];
    if (repoIds.length === 0) throw notFound(`no indexed file ${p}${options.repository ? ` in ${options.repository}` : ''}`, 'file_not_found');
    if (repoIds.length > 1) throw badRequest(`${p} exists in several repositories: name one with --repo`, 'ambiguous_file');
    const target = index(t).get(repoIds[0]!)!;
    return {
      repository: target.repository,
      branch: target.branch,
      commit: target.commit,
      path: p,
      depth,
      results: (answer?.results ?? []).map((r) => ({ kind: r.kind as 'file' | 'module', [r.kind === 'module' ? 'module' : 'path']: r.name, depth: r.depth })),
    };
  }

  return {
    targets,

    async findSymbol(name: string, options: GraphScopeInput & { prefix?: boolean; kind?: string; limit?: number } = {}) {
      const n = checkName(name);
      const limit = checkLimit(options.limit);
      const t = await targets(options);
      const byId = index(t);
      const rows = await graph.read<SymbolRow>(
        `UNWIND $targets AS t
         CALL {
           WITH t MATCH (s:Symbol {repoId: t.repoId, branch: t.branch}) WHERE s.name STARTS WITH $name AND ($prefix OR s.name = $name) RETURN s
           UNION
           WITH t MATCH (s:Symbol {repoId: t.repoId, branch: t.branch}) WHERE s.qualifiedName STARTS WITH $name AND ($prefix OR s.qualifiedName = $name) RETURN s
         }
         WITH s WHERE $kind IS NULL OR s.kind = $kind
         RETURN ${SYMBOL_FIELDS}
         ORDER BY CASE WHEN s.name = $name OR s.qualifiedName = $name THEN 0 ELSE 1 END, s.qualifiedName, s.path
         LIMIT ${limit}`,
        { ...params(t), name: n, prefix: options.prefix ?? false, kind: options.kind ?? null },
      );
      return {
        query: n,
        results: rows.map((r) => toRef(r, byId)),
        commits: t.map(({ repository, branch, commit }) => ({ repository, branch, commit })),
      };
    },

    callers: (symbol: string, options: GraphScopeInput & { depth?: number; limit?: number; path?: string } = {}) => related('callers', symbol, options),
    callees: (symbol: string, options: GraphScopeInput & { depth?: number; limit?: number; path?: string } = {}) => related('callees', symbol, options),
    dependencies: (path: string, options: GraphScopeInput & { repository?: string; depth?: number; limit?: number } = {}) => fileRelations('dependencies', path, options),
    dependents: (path: string, options: GraphScopeInput & { repository?: string; depth?: number; limit?: number } = {}) => fileRelations('dependents', path, options),

    /** Shortest call path from one symbol to another (by name), within one repository. */
    async path(from: string, to: string, options: GraphScopeInput & { repository?: string; maxDepth?: number } = {}) {
      const a = checkName(from);
      const b = checkName(to);
      const maxDepth = checkDepth(options.maxDepth, MAX_PATH_DEPTH, 6);
      const t = await targets(options.repository ? { ...options, repositories: [options.repository] } : options);
      const byId = index(t);
      const rows = await graph.read<{ steps: SymbolRow[] }>(
        `UNWIND $targets AS t
         ${symbolsNamed('a', '$from')}
         ${symbolsNamed('b', '$to')}
         WITH a, b WHERE a <> b
         MATCH p = shortestPath((a)-[:CALLS*..${maxDepth}]->(b))
         RETURN [s IN nodes(p) | {repoId: s.repoId, path: s.path, name: s.name, qualifiedName: s.qualifiedName, kind: s.kind, startLine: s.startLine, endLine: s.endLine}] AS steps
         ORDER BY length(p)
         LIMIT 1`,
        { ...params(t), from: a, to: b },
      );
      const steps = rows[0]?.steps ?? [];
      const repoId = steps[0]?.repoId;
      const target = repoId === undefined ? undefined : byId.get(repoId);
      return {
        from: a,
        to: b,
        found: steps.length > 0,
        path: steps.map((s) => toRef(s, byId)),
        ...(target ? { repository: target.repository, branch: target.branch, commit: target.commit } : {}),
      };
    },

    /** Folders (to `depth` levels) with their file and symbol counts, and the import edges between them. */
    async architecture(repository: string, options: GraphScopeInput & { depth?: number } = {}) {
      const depth = checkDepth(options.depth, 4, 1);
      const [target] = await targets({ ...options, repositories: [checkName(repository, 'repository')] });
      if (!target) throw notFound(`repository "${repository}" has no indexed commit yet`, 'not_indexed');
      // A file's folder, cut to `depth` levels ('.' for the root); Cypher has no two-argument min().
      const folder = (v: string) => {
        const dirs = `size(split(${v}, '/')) - 1`;
        const keep = `CASE WHEN ${dirs} < $depth THEN ${dirs} ELSE $depth END`;
        return `CASE WHEN ${dirs} = 0 THEN '.' ELSE reduce(acc = '', part IN split(${v}, '/')[0..${keep}] | acc + CASE WHEN acc = '' THEN '' ELSE '/' END + part) END`;
      };
      const scope = { repoId: graph.repoKey(target.repositoryId), branch: target.branch, depth };
      const folders = await graph.read<{ folder: string; files: number; symbols: number }>(
        `MATCH (f:File {repoId: $repoId, branch: $branch}) WHERE NOT coalesce(f.placeholder, false)
         OPTIONAL MATCH (f)-[:DEFINES]->(s:Symbol)
         WITH ${folder('f.path')} AS folder, f, count(s) AS symbols
         RETURN folder, count(f) AS files, sum(symbols) AS symbols
         ORDER BY folder`,
        scope,
      );
      const edges = await graph.read<{ from: string; to: string; imports: number }>(
        `MATCH (a:File {repoId: $repoId, branch: $branch})-[:IMPORTS]->(b:File)
         WITH ${folder('a.path')} AS from, ${folder('b.path')} AS to
         WHERE from <> to
         RETURN from, to, count(*) AS imports
         ORDER BY imports DESC, from, to
         LIMIT ${MAX_RESULTS}`,
        scope,
      );
      const modules = await graph.read<{ module: string; importers: number }>(
        `MATCH (f:File {repoId: $repoId, branch: $branch})-[:IMPORTS]->(m:Module)
         RETURN m.name AS module, count(DISTINCT f) AS importers
         ORDER BY importers DESC, module
         LIMIT 50`,
        scope,
      );
      return { repository: target.repository, branch: target.branch, commit: target.commit, depth, folders, edges, externalModules: modules };
    },
  };
}

export type GraphQueryService = ReturnType<typeof createGraphQueryService>;
