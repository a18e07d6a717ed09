import { createReadStream, createWriteStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import type pg from 'pg';
import { from as copyFrom, to as copyTo } from 'pg-copy-streams';
import { AppError } from '../errors.ts';
import { hashingCounter } from './streams.ts';
import type { ManifestPart } from './manifest.ts';

/**
 * The tables a set holds, parents first (the order they are restored in), and which rows belong to a scope:
 * `all` (every instance, and the deployment-wide tables) or one instance's repositories and what hangs off
 * them. Staging tables (an index run in flight) are left out: a restored branch starts at its published commit.
 */
interface TableSpec {
  table: string;
  /**
   * SQL predicate on the table's rows for one instance (`i` is the instance as a literal; `t` names a table,
   * so the same predicate reads the live tables or a restore's loaded copies); null: only in a set of every instance.
   */
  instanceWhere: ((i: string, t: (table: string) => string) => string) | null;
  /** Rows another scope may share (content-addressed): restored with ON CONFLICT DO NOTHING instead of replaced. */
  shared?: boolean;
}

const repos = (i: string, t: (table: string) => string) => `(SELECT id FROM ${t('repositories')} WHERE instance = ${i})`;
export const BACKUP_TABLES: TableSpec[] = [
  { table: 'repositories', instanceWhere: (i) => `instance = ${i}` },
  { table: 'repository_branches', instanceWhere: (i, t) => `repository_id IN ${repos(i, t)}` },
  { table: 'files', instanceWhere: (i, t) => `repository_id IN ${repos(i, t)}` },
  { table: 'chunks', instanceWhere: (i, t) => `repository_id IN ${repos(i, t)}` },
  { table: 'chunk_model_vectors', instanceWhere: (i, t) => `chunk_id IN (SELECT id FROM ${t('chunks')} WHERE repository_id IN ${repos(i, t)})` },
  {
    table: 'embedding_cache',
    // The embedding cache is content-addressed: an instance's set carries the entries of its own texts only.
    instanceWhere: (i, t) => `content_hash IN (SELECT content_hash FROM ${t('chunks')} WHERE repository_id IN ${repos(i, t)}
                     UNION SELECT v.text_hash FROM ${t('chunk_model_vectors')} v JOIN ${t('chunks')} c ON c.id = v.chunk_id WHERE c.repository_id IN ${repos(i, t)})`,
    shared: true,
  },
  { table: 'webhook_deliveries', instanceWhere: (i, t) => `repository_id IN ${repos(i, t)}`, shared: true },
  { table: 'api_tokens', instanceWhere: null },
  // The audit trail only grows: a restore brings back rows it lacks and keeps those written since the set.
  { table: 'audit_log', instanceWhere: null, shared: true },
];

/** Tables deliberately not in a set: in-flight index runs and the migration ledger (the target runs its own). */
export const NOT_BACKED_UP = ['chunk_staging', 'file_staging', 'graph_staging', 'pgmigrations'];

/** Tables that are restored as a whole (their rows of the scope are replaced), children before parents when deleting. */
const DELETE_ORDER = ['api_tokens', 'repositories'];

export async function columnsOf(client: pg.ClientBase, table: string): Promise<string[]> {
  const { rows } = await client.query<{ column_name: string }>(
    `SELECT column_name FROM information_schema.columns
      WHERE table_schema = current_schema() AND table_name = $1 AND is_generated = 'NEVER'
      ORDER BY ordinal_position`,
    [table],
  );
  return rows.map((r) => r.column_name);
}

const ident = (name: string) => `"${name.replace(/"/g, '""')}"`;

const live = (table: string) => ident(table);
const loaded = (table: string) => ident(`restore_${table}`);

/** The scope's predicate on a table: undefined for every row, null when the table is not in the scope at all. */
function whereFor(client: pg.ClientBase, spec: TableSpec, instance: string | null, t = live): string | null | undefined {
  if (instance === null) return undefined;
  if (spec.instanceWhere === null) return null;
  return spec.instanceWhere(client.escapeLiteral(instance), t);
}

/**
 * Copies every table of the scope to `<dir>/postgres/<table>.copy` (COPY's text format: one row a line),
 * streaming, within the caller's REPEATABLE READ transaction so every table shows the same moment.
 */
export async function exportPostgres(
  client: pg.ClientBase,
  dir: string,
  instance: string | null,
  onTable: (table: string) => void,
): Promise<ManifestPart[]> {
  const parts: ManifestPart[] = [];
  for (const spec of BACKUP_TABLES) {
    const where = whereFor(client, spec, instance);
    if (where === null) continue;
    onTable(spec.table);
    const columns = await columnsOf(client, spec.table);
    const select = `SELECT ${columns.map(ident).join(', ')} FROM ${ident(spec.table)}${where ? ` WHERE ${where}` : ''}`;
    const file = `postgres/${spec.table}.copy`;
    const counter = hashingCounter();
    await pipeline(client.query(copyTo(`COPY (${select}) TO STDOUT`)), counter.stream, createWriteStream(`${dir}/${file}`));
    parts.push({ file, name: `postgres:${spec.table}`, store: 'postgres', count: counter.lines(), bytes: counter.bytes(), sha256: counter.sha256(), columns });
  }
  return parts;
}

/** Before anything is written: every column a part carries must exist here (a set from a newer version is refused). */
export async function checkPostgresColumns(client: pg.ClientBase, parts: ManifestPart[]): Promise<void> {
  for (const part of parts) {
    const table = part.name.slice('postgres:'.length);
    if (!BACKUP_TABLES.some((t) => t.table === table)) throw new AppError(400, 'backup_foreign', `the set has a Postgres table this version does not know: ${table}`);
    const here = new Set(await columnsOf(client, table));
    const missing = (part.columns ?? []).filter((c) => !here.has(c));
    if (missing.length > 0) {
      throw new AppError(400, 'backup_newer', `the set's table ${table} has columns this database lacks (${missing.join(', ')}): it was made by a newer version; upgrade before restoring`);
    }
  }
}

/** Rows of the scope that a restore would replace. */
export async function existingRows(client: pg.ClientBase, instance: string | null): Promise<{ repositories: number; tokens: number }> {
  const repos = await client.query<{ n: string }>(`SELECT count(*) AS n FROM repositories WHERE $1::text IS NULL OR instance = $1`, [instance]);
  const tokens = instance === null ? await client.query<{ n: string }>(`SELECT count(*) AS n FROM api_tokens`) : { rows: [{ n: '0' }] };
  return { repositories: Number(repos.rows[0]!.n), tokens: Number(tokens.rows[0]!.n) };
}

/**
 * Replaces the scope's rows with the set's, inside the caller's transaction: every part is loaded into a
 * temporary copy of its table, the scope's live rows go (children by cascade), the set's rows of the scope
 * are inserted (identity values as they were; shared tables merge), and the identity sequences move past
 * the restored ids. Any failure rolls the whole of it back. Returns the repositories restored and the rows
 * written per table.
 */
export async function importPostgres(
  client: pg.ClientBase,
  dir: string,
  parts: ManifestPart[],
  instance: string | null,
  onTable: (table: string) => void,
): Promise<{ repositoryIds: Set<number>; rows: Record<string, number> }> {
  const present = BACKUP_TABLES.filter((spec) => parts.some((p) => p.name === `postgres:${spec.table}`));
  for (const spec of present) {
    const part = parts.find((p) => p.name === `postgres:${spec.table}`)!;
    onTable(spec.table);
    await client.query(`CREATE TEMP TABLE ${loaded(spec.table)} (LIKE ${live(spec.table)} INCLUDING DEFAULTS) ON COMMIT DROP`);
    const columns = (part.columns ?? []).map(ident).join(', ');
    await pipeline(createReadStream(`${dir}/${part.file}`), client.query(copyFrom(`COPY ${loaded(spec.table)} (${columns}) FROM STDIN`)));
  }
  for (const table of DELETE_ORDER) {
    const spec = BACKUP_TABLES.find((t) => t.table === table)!;
    const where = whereFor(client, spec, instance);
    if (where === null) continue;
    await client.query(`DELETE FROM ${live(table)}${where ? ` WHERE ${where}` : ''}`);
  }
  const rows: Record<string, number> = {};
  for (const spec of present) {
    const where = whereFor(client, spec, instance, loaded);
    if (where === null) continue;
    const part = parts.find((p) => p.name === `postgres:${spec.table}`)!;
    const columns = (part.columns ?? []).map(ident).join(', ');
    const inserted = await client.query(
      `INSERT INTO ${live(spec.table)} (${columns}) OVERRIDING SYSTEM VALUE SELECT ${columns} FROM ${loaded(spec.table)}${where ? ` WHERE ${where}` : ''}${spec.shared ? ' ON CONFLICT DO NOTHING' : ''}`,
    );
    rows[`postgres:${spec.table}`] = inserted.rowCount ?? 0;
  }
  const repoWhere = whereFor(client, BACKUP_TABLES[0]!, instance, loaded);
  const restored = await client.query<{ id: string }>(`SELECT id FROM ${loaded('repositories')}${repoWhere ? ` WHERE ${repoWhere}` : ''}`);
  // Identity columns keep their restored values; their sequences must not hand those out again.
  const { rows: identities } = await client.query<{ table_name: string; column_name: string }>(
    `SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = current_schema() AND is_identity = 'YES'`,
  );
  for (const r of identities) {
    const max = `(SELECT max(${ident(r.column_name)}) FROM ${ident(r.table_name)})`;
    await client.query(`SELECT setval(pg_get_serial_sequence($1, $2), coalesce(${max}, 1), ${max} IS NOT NULL)`, [ident(r.table_name), r.column_name]);
  }
  return { repositoryIds: new Set(restored.rows.map((r) => Number(r.id))), rows };
}

/** Live rows per table of a scope: what a restore is compared against. */
export async function countPostgres(client: pg.ClientBase, instance: string | null): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const spec of BACKUP_TABLES) {
    const where = whereFor(client, spec, instance);
    if (where === null) continue;
    const { rows } = await client.query<{ n: string }>(`SELECT count(*) AS n FROM ${ident(spec.table)}${where ? ` WHERE ${where}` : ''}`);
    counts[`postgres:${spec.table}`] = Number(rows[0]!.n);
  }
  return counts;
}
