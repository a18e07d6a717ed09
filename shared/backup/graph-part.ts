import { createWriteStream } from 'node:fs';
import type { Neo4jConnection } from '../stores/neo4j.connection.ts';
import { AppError } from '../errors.ts';
import type { ManifestPart } from './manifest.ts';
import { ndjsonBatches, ndjsonWriter } from './streams.ts';

/** Nodes or relationships per write transaction on restore. */
const BATCH = 2000;

interface NodeLine {
  labels: string[];
  props: Record<string, unknown>;
}
interface RelLine {
  type: string;
  props: Record<string, unknown>;
  /** Start and end nodes: first label, the property that identifies it (`key`, or `id` for a repository), its value. */
  from: [string, string, string];
  to: [string, string, string];
}

/** Properties that carry the deployment's namespace (`<schema>/<repository id>…`). */
const NAMESPACED = ['id', 'repoId', 'key'];
const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

function checkedName(kind: string, name: string): string {
  if (!NAME.test(name)) throw new AppError(400, 'backup_foreign', `the set's graph has a ${kind} this version cannot restore: ${JSON.stringify(name)}`);
  return `\`${name}\``;
}

/** The property a node is found by: repositories have `id`, everything else a `key`. */
const refOf = (labels: string[], props: Record<string, unknown>): [string, string, string] =>
  labels.includes('Repository') ? ['Repository', 'id', String(props.id)] : [labels[0]!, 'key', String(props.key)];

/**
 * Nodes and relationships of the given repositories (their namespaced keys), streamed from one read
 * transaction to NDJSON, with the constraints and indexes the graph has.
 */
export async function exportGraph(neo4j: Neo4jConnection, dir: string, repoKeys: string[]): Promise<{ parts: ManifestPart[]; schema: string[] }> {
  const session = neo4j.driver.session({ database: neo4j.database, defaultAccessMode: 'READ' });
  const tx = await session.beginTransaction();
  try {
    const nodes = ndjsonWriter(createWriteStream(`${dir}/neo4j/nodes.ndjson`));
    const nodeResult = tx.run(
      `MATCH (n) WHERE n.repoId IN $keys OR (n:Repository AND n.id IN $keys)
       RETURN labels(n) AS labels, properties(n) AS props ORDER BY coalesce(n.key, n.id)`,
      { keys: repoKeys },
    );
    for await (const record of nodeResult) {
      await nodes.write({ labels: (record.get('labels') as string[]).sort(), props: record.get('props') as Record<string, unknown> } satisfies NodeLine);
    }
    const rels = ndjsonWriter(createWriteStream(`${dir}/neo4j/relationships.ndjson`));
    const relResult = tx.run(
      `MATCH (a)-[r]->(b) WHERE a.repoId IN $keys OR (a:Repository AND a.id IN $keys)
       RETURN type(r) AS type, properties(r) AS props, labels(a) AS al, properties(a) AS ap, labels(b) AS bl, properties(b) AS bp
       ORDER BY coalesce(a.key, a.id), type(r), coalesce(b.key, b.id)`,
      { keys: repoKeys },
    );
    for await (const record of relResult) {
      await rels.write({
        type: record.get('type') as string,
        props: record.get('props') as Record<string, unknown>,
        from: refOf(record.get('al') as string[], record.get('ap') as Record<string, unknown>),
        to: refOf(record.get('bl') as string[], record.get('bp') as Record<string, unknown>),
      } satisfies RelLine);
    }
    await tx.commit();
    const n = await nodes.end();
    const r = await rels.end();
    return {
      parts: [
        { file: 'neo4j/nodes.ndjson', name: 'neo4j:nodes', store: 'neo4j', count: n.count, bytes: n.bytes, sha256: n.sha256 },
        { file: 'neo4j/relationships.ndjson', name: 'neo4j:relationships', store: 'neo4j', count: r.count, bytes: r.bytes, sha256: r.sha256 },
      ],
      schema: await graphSchema(neo4j),
    };
  } finally {
    await session.close();
  }
}

/** Names of this graph's constraints and indexes (ours are named `pk_…`). */
export async function graphSchema(neo4j: Neo4jConnection): Promise<string[]> {
  const constraints = await neo4j.driver.executeQuery('SHOW CONSTRAINTS YIELD name RETURN name', {}, { database: neo4j.database });
  const indexes = await neo4j.driver.executeQuery("SHOW INDEXES YIELD name, owningConstraint WHERE owningConstraint IS NULL AND name STARTS WITH 'pk_' RETURN name", {}, { database: neo4j.database });
  return [...constraints.records.map((r) => r.get('name') as string).filter((n) => n.startsWith('pk_')), ...indexes.records.map((r) => r.get('name') as string)].sort();
}

/**
 * Writes the set's nodes, then its relationships, under this deployment's namespace (keys of another
 * namespace are rewritten: a verification restores into a scratch one). The caller has removed the
 * repositories' graph first.
 */
export async function importGraph(
  neo4j: Neo4jConnection,
  dir: string,
  fromNamespace: string,
  toNamespace: string,
  /** Whether a repository (its key in this namespace) is restored: a set of every instance may be restored for one. */
  wanted: (repoKey: string) => boolean,
  onProgress: (step: string) => void,
): Promise<number> {
  const rename = (value: unknown): unknown =>
    typeof value === 'string' && fromNamespace !== toNamespace && value.startsWith(`${fromNamespace}/`) ? `${toNamespace}/${value.slice(fromNamespace.length + 1)}` : value;
  const renamed = (props: Record<string, unknown>) => {
    const out = { ...props };
    for (const p of NAMESPACED) if (p in out) out[p] = rename(out[p]);
    return out;
  };
  const write = async (cypher: string, rows: unknown[]) => {
    const session = neo4j.driver.session({ database: neo4j.database, defaultAccessMode: 'WRITE' });
    try {
      await session.executeWrite((tx) => tx.run(cypher, { rows }));
    } finally {
      await session.close();
    }
  };

  let written = 0;
  onProgress('graph nodes');
  for await (const batch of ndjsonBatches<NodeLine>(`${dir}/neo4j/nodes.ndjson`, BATCH)) {
    const byLabels = new Map<string, Array<Record<string, unknown>>>();
    for (const node of batch) {
      const props = renamed(node.props);
      if (!wanted(String(node.labels.includes('Repository') ? props.id : props.repoId))) continue;
      written += 1;
      const labels = node.labels.map((l) => checkedName('label', l)).join(':');
      byLabels.set(labels, [...(byLabels.get(labels) ?? []), props]);
    }
    for (const [labels, rows] of byLabels) await write(`UNWIND $rows AS row CREATE (n:${labels}) SET n = row`, rows);
  }
  onProgress('graph relationships');
  for await (const batch of ndjsonBatches<RelLine>(`${dir}/neo4j/relationships.ndjson`, BATCH)) {
    const byShape = new Map<string, { cypher: string; rows: unknown[] }>();
    for (const rel of batch) {
      const from = String(rename(rel.from[2]));
      const owner = from.split('\u0000')[0]!;
      if (!wanted(rel.from[0] === 'Repository' ? from : owner)) continue;
      const [fl, fp] = [checkedName('label', rel.from[0]), checkedName('property', rel.from[1])];
      const [tl, tp] = [checkedName('label', rel.to[0]), checkedName('property', rel.to[1])];
      const type = checkedName('relationship type', rel.type);
      const cypher = `UNWIND $rows AS row MATCH (a:${fl} {${fp}: row.from}) MATCH (b:${tl} {${tp}: row.to}) CREATE (a)-[r:${type}]->(b) SET r = row.props`;
      const shape = byShape.get(cypher) ?? { cypher, rows: [] };
      shape.rows.push({ from, to: rename(rel.to[2]), props: rel.props });
      byShape.set(cypher, shape);
    }
    for (const { cypher, rows } of byShape.values()) await write(cypher, rows);
  }
  return written;
}

/** Nodes and relationships of the given repositories (namespaced keys). */
export async function countGraph(neo4j: Neo4jConnection, repoKeys: string[]): Promise<Record<string, number>> {
  const nodes = await neo4j.driver.executeQuery(
    `MATCH (n) WHERE n.repoId IN $keys OR (n:Repository AND n.id IN $keys) RETURN count(n) AS n`,
    { keys: repoKeys },
    { database: neo4j.database },
  );
  const rels = await neo4j.driver.executeQuery(
    `MATCH (a)-[r]->() WHERE a.repoId IN $keys OR (a:Repository AND a.id IN $keys) RETURN count(r) AS n`,
    { keys: repoKeys },
    { database: neo4j.database },
  );
  return { 'neo4j:nodes': Number(nodes.records[0]!.get('n')), 'neo4j:relationships': Number(rels.records[0]!.get('n')) };
}
