import { createHash } from 'node:crypto';
import type { ManagedTransaction } from 'neo4j-driver';
import type { Neo4jConnection } from './neo4j.connection.ts';

/**
 * The code graph in Neo4j:
 *
 *   (:Repository)-[:CONTAINS]->(:File)-[:DEFINES]->(:Symbol)
 *   (:File)-[:IMPORTS]->(:File|:Module)
 *   (:Symbol)-[:CALLS]->(:Symbol)
 *   (:Symbol)-[:EXTENDS|IMPLEMENTS]->(:Symbol)
 *
 * Every node carries repoId and branch (files and symbols also their path).
 * Repository ids come from Postgres, so in Neo4j they are namespaced by the
 * deployment's Postgres schema (`public/12`): two deployments or test runs
 * sharing one Neo4j never collide. Community edition has single-property
 * uniqueness only, so each node has a `key` that joins its identifying parts.
 */

export interface GraphSymbolInput {
  name: string;
  qualifiedName: string;
  kind: string;
  startLine: number;
  endLine: number;
  exported: boolean;
  calls: string[];
  extends: string[];
  implements: string[];
}

export interface GraphFileInput {
  path: string;
  language: string | null;
  symbols: GraphSymbolInput[];
  /** Resolved imports: to a file of the same repository and branch, or to an external module. */
  imports: Array<{ kind: 'file'; path: string; names: string[] } | { kind: 'module'; name: string; names: string[] }>;
}

export interface Scope {
  repoId: number;
  branch: string;
}

const SEP = '\u0000';

/** Files per write transaction: bounded so one huge run never becomes one huge transaction. */
const FILES_PER_TX = 200;
const ROWS_PER_TX = 5000;
/**
 * Files whose references are resolved per round: each round is five Cypher
 * round trips whatever its size, so larger rounds are cheaper up to a point.
 * Measured on a first index of 6,000 files (2 cores): 200 files took 6.5 s,
 * 1,000 took 4.4 s, 3,000 took 5.6 s (larger reads and writes per transaction).
 */
const RESOLVE_FILES = 1000;

const SCHEMA = [
  'CREATE CONSTRAINT pk_repository_id IF NOT EXISTS FOR (r:Repository) REQUIRE r.id IS UNIQUE',
  'CREATE CONSTRAINT pk_file_key IF NOT EXISTS FOR (f:File) REQUIRE f.key IS UNIQUE',
  'CREATE CONSTRAINT pk_symbol_key IF NOT EXISTS FOR (s:Symbol) REQUIRE s.key IS UNIQUE',
  'CREATE CONSTRAINT pk_module_key IF NOT EXISTS FOR (m:Module) REQUIRE m.key IS UNIQUE',
  'CREATE INDEX pk_symbol_name IF NOT EXISTS FOR (s:Symbol) ON (s.repoId, s.branch, s.name)',
  'CREATE INDEX pk_symbol_qname IF NOT EXISTS FOR (s:Symbol) ON (s.repoId, s.branch, s.qualifiedName)',
  'CREATE INDEX pk_symbol_path IF NOT EXISTS FOR (s:Symbol) ON (s.repoId, s.branch, s.path)',
  'CREATE INDEX pk_file_scope IF NOT EXISTS FOR (f:File) ON (f.repoId, f.branch)',
];

/**
 * Index entries are limited in size (a few KB in Neo4j's range indexes), and a
 * deep path or a long qualified name can outgrow that: such keys keep a
 * readable head and end in the SHA-256 of the whole key, so they stay unique.
 */
const MAX_KEY_LENGTH = 512;
/** What a cut key keeps of its head: the rest of its length is `…#` and the hash. */
const KEPT_HEAD = MAX_KEY_LENGTH - 72;
export function boundedKey(key: string): string {
  if (key.length <= MAX_KEY_LENGTH) return key;
  return `${key.slice(0, KEPT_HEAD)}…#${createHash('sha256').update(key).digest('hex')}`;
}

function chunks<T>(items: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

export function createGraphStore(neo4j: Neo4jConnection, namespace: string) {
  const { driver, database } = neo4j;
  const repoKey = (id: number) => `${namespace}/${id}`;
  const fileKey = (s: Scope, path: string) => boundedKey(`${repoKey(s.repoId)}${SEP}${s.branch}${SEP}${path}`);
  const moduleKey = (s: Scope, name: string) => boundedKey(`${repoKey(s.repoId)}${SEP}${s.branch}${SEP}module:${name}`);
  const symbolKey = (s: Scope, path: string, qualifiedName: string, startLine: number) =>
    boundedKey(`${repoKey(s.repoId)}${SEP}${s.branch}${SEP}${path}#${qualifiedName}@${startLine}`);
  const scopeParams = (s: Scope) => ({ repoId: repoKey(s.repoId), branch: s.branch });
  const write = <T>(work: (tx: ManagedTransaction) => Promise<T>) => {
    const session = driver.session({ database, defaultAccessMode: 'WRITE' });
    return session.executeWrite(work).finally(() => session.close());
  };
  const read = async <T = Record<string, unknown>>(cypher: string, params: Record<string, unknown>): Promise<T[]> => {
    const result = await driver.executeQuery(cypher, params, { database, routing: 'READ' });
    return result.records.map((r) => r.toObject() as T);
  };

  return {
    read,
    /** The Neo4j id of a Postgres repository id, namespaced. */
    repoKey,
    fileKey,

    /** Constraints and indexes; safe to run at every start. */
    async ensureSchema(): Promise<void> {
      for (const statement of SCHEMA) {
        // `IF NOT EXISTS` is not atomic: two processes starting together (API and workers, parallel test
        // files) can both create, and the loser is told "an equivalent index already exists". It does.
        await driver.executeQuery(statement, {}, { database }).catch((err: unknown) => {
          if (!(err instanceof Error && /equivalent (index|constraint) already exists|already exists/i.test(err.message))) throw err;
        });
      }
    },

    /** Replaces the nodes and outgoing edges of these files (their symbols, imports). Calls are resolved later. */
    async replaceFiles(scope: Scope, repoName: string, files: GraphFileInput[]): Promise<{ nodes: number; edges: number }> {
      let nodes = 0;
      let edges = 0;
      for (const group of chunks(files, FILES_PER_TX)) {
        const rows = group.map((f) => ({
          key: fileKey(scope, f.path),
          path: f.path,
          language: f.language,
          symbols: f.symbols.map((s) => ({
            key: symbolKey(scope, f.path, s.qualifiedName, s.startLine),
            name: s.name,
            qualifiedName: s.qualifiedName,
            kind: s.kind,
            startLine: s.startLine,
            endLine: s.endLine,
            exported: s.exported,
            calls: s.calls,
            extends: s.extends,
            implements: s.implements,
          })),
          fileImports: f.imports.flatMap((i) => (i.kind === 'file' ? [{ key: fileKey(scope, i.path), path: i.path, names: i.names }] : [])),
          moduleImports: f.imports.flatMap((i) => (i.kind === 'module' ? [{ key: moduleKey(scope, i.name), name: i.name, names: i.names }] : [])),
        }));
        // Each statement gets only the fields it reads: the rows are encoded once per statement, and
        // sending all of them four times cost the worker and Neo4j as much as the writes themselves.
        const scoped = scopeParams(scope);
        const keys = rows.map((r) => r.key);
        const fileRows = rows.map((r) => ({ key: r.key, path: r.path, language: r.language, symbols: r.symbols }));
        const fileImports = rows.filter((r) => r.fileImports.length > 0).map((r) => ({ key: r.key, imports: r.fileImports }));
        const moduleImports = rows.filter((r) => r.moduleImports.length > 0).map((r) => ({ key: r.key, imports: r.moduleImports }));
        await write(async (tx) => {
          // Old symbols (with every edge touching them) and old imports of these files go first, so the
          // imports below can be CREATEd (one per target, deduplicated upstream) instead of MERGEd.
          await tx.run(
            `UNWIND $keys AS key
             MATCH (f:File {key: key})
             OPTIONAL MATCH (f)-[:DEFINES]->(s:Symbol)
             DETACH DELETE s
             WITH DISTINCT f
             OPTIONAL MATCH (f)-[i:IMPORTS]->()
             DELETE i`,
            { keys },
          );
          await tx.run(
            `MERGE (r:Repository {id: $repoId}) SET r.name = $repoName
             WITH r
             UNWIND $rows AS row
             MERGE (f:File {key: row.key})
             SET f.repoId = $repoId, f.branch = $branch, f.path = row.path, f.language = row.language, f.placeholder = false
             MERGE (r)-[:CONTAINS]->(f)
             WITH f, row
             UNWIND row.symbols AS s
             CREATE (f)-[:DEFINES]->(:Symbol {key: s.key, repoId: $repoId, branch: $branch, path: row.path, name: s.name,
               qualifiedName: s.qualifiedName, kind: s.kind, startLine: s.startLine, endLine: s.endLine, exported: s.exported,
               calls: s.calls, extendsNames: s.extends, implementsNames: s.implements})`,
            { rows: fileRows, ...scoped, repoName },
          );
          if (fileImports.length > 0) {
            await tx.run(
              `UNWIND $rows AS row
               MATCH (f:File {key: row.key})
               UNWIND row.imports AS imp
               MERGE (t:File {key: imp.key})
                 ON CREATE SET t.repoId = $repoId, t.branch = $branch, t.path = imp.path, t.placeholder = true
               CREATE (f)-[:IMPORTS {names: imp.names}]->(t)`,
              { rows: fileImports, ...scoped },
            );
          }
          if (moduleImports.length > 0) {
            await tx.run(
              `UNWIND $rows AS row
               MATCH (f:File {key: row.key})
               UNWIND row.imports AS imp
               MERGE (m:Module {key: imp.key}) ON CREATE SET m.repoId = $repoId, m.branch = $branch, m.name = imp.name
               CREATE (f)-[:IMPORTS {names: imp.names}]->(m)`,
              { rows: moduleImports, ...scoped },
            );
          }
        });
        for (const f of group) {
          nodes += 1 + f.symbols.length;
          edges += f.symbols.length + f.imports.length + 1;
        }
      }
      return { nodes, edges };
    },

    /** Removes deleted files with their symbols and every edge touching them. */
    async deleteFiles(scope: Scope, paths: string[]): Promise<void> {
      for (const group of chunks(paths, FILES_PER_TX)) {
        await write((tx) =>
          tx.run(
            `UNWIND $keys AS key
             MATCH (f:File {key: key})
             OPTIONAL MATCH (f)-[:DEFINES]->(s:Symbol)
             DETACH DELETE s, f`,
            { keys: group.map((p) => fileKey(scope, p)) },
          ),
        );
      }
      // Files nobody imports any more and that were never indexed themselves.
      await write((tx) =>
        tx.run(
          `MATCH (f:File {repoId: $repoId, branch: $branch}) WHERE f.placeholder AND NOT ()-[:IMPORTS]->(f) DELETE f`,
          scopeParams(scope),
        ),
      );
    },

    /** How many files of the branch import each of its files (files nothing imports are absent): how central a file is. */
    async importerCounts(scope: Scope): Promise<Map<string, number>> {
      const rows = await read<{ path: string; importers: number | { toNumber(): number } }>(
        `MATCH (d:File {repoId: $repoId, branch: $branch})-[:IMPORTS]->(f:File)
         WHERE NOT coalesce(f.placeholder, false) AND NOT coalesce(d.placeholder, false)
         RETURN f.path AS path, count(DISTINCT d) AS importers`,
        scopeParams(scope),
      );
      return new Map(rows.map((r) => [r.path, typeof r.importers === 'number' ? r.importers : r.importers.toNumber()]));
    },

    /** Files that import any of `paths`, directly or through one re-exporting file (whose calls may point into them). */
    async dependentsOf(scope: Scope, paths: string[]): Promise<string[]> {
      if (paths.length === 0) return [];
      const rows = await read<{ path: string }>(
        `UNWIND $keys AS key
         MATCH (d:File)-[:IMPORTS*1..2]->(:File {key: key})
         WHERE NOT coalesce(d.placeholder, false)
         RETURN DISTINCT d.path AS path`,
        { keys: paths.map((p) => fileKey(scope, p)) },
      );
      return rows.map((r) => r.path);
    },

    /**
     * Re-resolves CALLS, EXTENDS and IMPLEMENTS of the symbols in `paths`: a
     * name resolves to a symbol of the same file, else to one defined in a
     * file it imports (best effort, by name).
     */
    async resolveEdges(scope: Scope, paths: string[]): Promise<{ edges: number }> {
      let edges = 0;
      // Symbols per imported file, read once per call: resolving changes edges, never symbols.
      const definedIn = new Map<string, Array<{ key: string; name: string; kind: string }>>();
      for (const group of chunks(paths, RESOLVE_FILES)) {
        const keys = group.map((p) => fileKey(scope, p));
        await write((tx) =>
          tx.run(
            // Pinned to the file key index: once the graph holds many calls, the planner at times started
            // from the relationships instead, and this step of a first index (nothing to delete) took 9 s, not 0.2.
            `UNWIND $keys AS key
             MATCH (f:File {key: key}) USING INDEX f:File(key)
             MATCH (f)-[:DEFINES]->(s:Symbol)-[e:CALLS|EXTENDS|IMPLEMENTS]->()
             DELETE e`,
            { keys },
          ),
        );
        // Candidates: every symbol of the file itself and of the files it imports, by name. Read as
        // plain lists and matched here: matching by name in Cypher compared every reference with every
        // symbol of the file and of its imports, which made this the longest step of a publish.
        const own = await read<{ file: string; key: string; name: string; qualifiedName: string; kind: string; calls: string[] | null; ext: string[] | null; impl: string[] | null }>(
          `UNWIND $keys AS key
           MATCH (f:File {key: key})-[:DEFINES]->(s:Symbol)
           RETURN f.key AS file, s.key AS key, s.name AS name, s.qualifiedName AS qualifiedName, s.kind AS kind, s.calls AS calls, s.extendsNames AS ext, s.implementsNames AS impl`,
          { keys },
        );
        // Which files each one imports, then the symbols of each imported file once: a file imported by
        // hundreds (an index.ts, a utils module) was read and sent once per importer, the longest read here.
        const links = await read<{ file: string; target: string }>(
          `UNWIND $keys AS key
           MATCH (f:File {key: key})-[:IMPORTS]->(t:File)
           RETURN DISTINCT f.key AS file, t.key AS target`,
          { keys },
        );
        // One hop further: what the imported files import themselves, where re-exported names live. The graph
        // does not tell a re-export from a plain import, so these are only tried for names found nowhere closer.
        const direct = [...new Set(links.map((l) => l.target))];
        const further = await read<{ file: string; target: string }>(
          `UNWIND $keys AS key
           MATCH (f:File {key: key})-[:IMPORTS]->(t:File)
           RETURN DISTINCT f.key AS file, t.key AS target`,
          { keys: direct },
        );
        const furtherOf = groupBy(further, (l) => l.file);
        const unread = [...new Set([...direct, ...further.map((l) => l.target)])].filter((t) => !definedIn.has(t));
        for (const t of unread) definedIn.set(t, []);
        const defined = await read<{ target: string; symbols: Array<{ key: string; name: string; kind: string }> }>(
          `UNWIND $targets AS key
           MATCH (t:File {key: key})-[:DEFINES]->(s:Symbol)
           RETURN t.key AS target, collect({key: s.key, name: s.name, kind: s.kind}) AS symbols`,
          { targets: unread },
        );
        for (const d of defined) definedIn.set(d.target, d.symbols);
        // Imported files in key order, so a name defined by two of them resolves the same way every time.
        const imported = [...groupBy(links, (l) => l.file)].map(([file, ls]) => ({
          file,
          symbols: ls.map((l) => l.target).sort().flatMap((t) => definedIn.get(t)!),
          reexported: [...new Set(ls.flatMap((l) => (furtherOf.get(l.target) ?? []).map((x) => x.target)))]
            .filter((t) => t !== file)
            .sort()
            .flatMap((t) => definedIn.get(t)!),
        }));
        const rows = resolveReferences(own, imported);
        for (const rel of ['CALLS', 'EXTENDS', 'IMPLEMENTS'] as const) {
          // Distinct pairs (resolveReferences), so edges can be CREATEd: every outgoing edge of these symbols was just deleted.
          const pairs = rows.filter((r) => r.rel === rel).map((r) => ({ from: r.from, to: r.to }));
          for (const batch of chunks(pairs, ROWS_PER_TX)) {
            await write((tx) =>
              tx.run(
                `UNWIND $pairs AS p
                 MATCH (a:Symbol {key: p.from}), (b:Symbol {key: p.to})
                 CREATE (a)-[:${rel}]->(b)`,
                { pairs: batch },
              ),
            );
          }
          edges += pairs.length;
        }
      }
      return { edges };
    },

    /** Removes everything of a repository (every branch), or of one branch. */
    async deleteRepository(repoId: number, branch?: string): Promise<void> {
      // Every key starts with the repository (and branch), so each label's key index finds the nodes: a
      // scan of all nodes per slice took 5 s for a 3,000-file repository in a graph holding a few others.
      // A branch name so long that keys were cut inside it is the one case left to a scan.
      const prefix = branch === undefined ? `${repoKey(repoId)}${SEP}` : `${repoKey(repoId)}${SEP}${branch}${SEP}`;
      const statements =
        prefix.length <= KEPT_HEAD
          ? ['Symbol', 'File', 'Module'].map((label) => `MATCH (n:${label}) WHERE n.key STARTS WITH $prefix`)
          : ['MATCH (n) WHERE (n:File OR n:Symbol OR n:Module) AND n.repoId = $repoId AND ($branch IS NULL OR n.branch = $branch)'];
      // In slices: deleting a large graph in one transaction would need a large heap.
      for (const match of statements) {
        for (;;) {
          const result = await driver.executeQuery(
            `${match} WITH n LIMIT 5000 DETACH DELETE n RETURN count(*) AS deleted`,
            { prefix, repoId: repoKey(repoId), branch: branch ?? null },
            { database },
          );
          if (Number(result.records[0]?.get('deleted') ?? 0) === 0) break;
        }
      }
      if (!branch) await driver.executeQuery('MATCH (r:Repository {id: $repoId}) DETACH DELETE r', { repoId: repoKey(repoId) }, { database });
    },
  };
}

export type GraphStore = ReturnType<typeof createGraphStore>;

const TYPE_KINDS = new Set(['class', 'interface', 'struct', 'trait', 'type']);

type Reference = { from: string; rel: 'CALLS' | 'EXTENDS' | 'IMPLEMENTS'; to: string };

function groupBy<T>(items: Iterable<T>, key: (item: T) => string): Map<string, T[]> {
  const map = new Map<string, T[]>();
  for (const item of items) {
    const k = key(item);
    const list = map.get(k);
    if (list) list.push(item);
    else map.set(k, [item]);
  }
  return map;
}

/**
 * Resolves each symbol's references by name: a symbol of the same file
 * first (not itself), else the first one of the files it imports; calls may
 * target any symbol, extends/implements only types. Each edge once.
 */
export function resolveReferences(
  own: Array<{ file: string; key: string; name: string; qualifiedName?: string; kind: string; calls: string[] | null; ext: string[] | null; impl: string[] | null }>,
  imported: Array<{ file: string; symbols: Array<{ key: string; name: string; kind: string }>; reexported?: Array<{ key: string; name: string; kind: string }> }>,
): Reference[] {
  const importedByFile = new Map(imported.map((i) => [i.file, groupBy(i.symbols, (s) => s.name)]));
  const reexportedByFile = new Map(imported.map((i) => [i.file, groupBy(i.reexported ?? [], (s) => s.name)]));
  const out = new Map<string, Reference>();
  for (const [file, symbols] of groupBy(own, (s) => s.file)) {
    const locals = groupBy(symbols, (s) => s.name);
    const fromImports = importedByFile.get(file);
    const fromReexports = reexportedByFile.get(file);
    for (const s of symbols) {
      // `this.area()` in Shape.describe means Shape.area, not Square.area further down the file: a
      // member of the caller's own type (or of the caller itself, for a type) comes before any other.
      const q = s.qualifiedName ?? s.name;
      const ownerPrefixes = [TYPE_KINDS.has(s.kind) ? `${q}.` : null, q.includes('.') ? q.slice(0, q.lastIndexOf('.') + 1) : null].filter((x): x is string => x !== null);
      const sameOwner = (c: { qualifiedName?: string }) => c.qualifiedName !== undefined && ownerPrefixes.some((p) => c.qualifiedName!.startsWith(p) && !c.qualifiedName!.slice(p.length).includes('.'));
      for (const [rel, names] of [['CALLS', s.calls], ['EXTENDS', s.ext], ['IMPLEMENTS', s.impl]] as const) {
        const fits = (c: { key: string; kind: string }) => c.key !== s.key && (rel === 'CALLS' || TYPE_KINDS.has(c.kind));
        for (const name of names ?? []) {
          const local = locals.get(name)?.filter(fits) ?? [];
          // Not in the file nor in what it imports: a file it imports may re-export it
          // (`export * from './inner'` in an index.ts, `from .core import compute` in an __init__.py).
          const target = local.find(sameOwner) ?? local[0] ?? fromImports?.get(name)?.find(fits) ?? fromReexports?.get(name)?.find(fits);
          if (target) out.set(`${rel}\0${s.key}\0${target.key}`, { from: s.key, rel, to: target.key });
        }
      }
    }
  }
  return [...out.values()];
}
