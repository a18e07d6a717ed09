import { createHash } from 'node:crypto';
import { z } from 'zod';

/** Bumped when the layout of a set changes in a way an older reader cannot follow. */
export const BACKUP_FORMAT = 1;
export const PRODUCT = 'personal-knowledge-mcp';
export const MANIFEST_FILE = 'manifest.json';

const part = z.object({
  /** Path inside the archive. */
  file: z.string().regex(/^[A-Za-z0-9._/-]+$/).refine((f) => !f.split('/').includes('..'), 'must not climb out of the archive'),
  /** Which store and what: `postgres:chunks`, `chroma:<collection>`, `neo4j:nodes`. */
  name: z.string().min(1),
  store: z.enum(['postgres', 'chroma', 'neo4j']),
  /** Rows, vectors, nodes or relationships in the file. */
  count: z.number().int().min(0),
  bytes: z.number().int().min(0),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  /** Postgres: the columns copied, in order. Chroma: the collection's name suffix, metadata and configuration. */
  columns: z.array(z.string()).optional(),
  collection: z
    .object({ suffix: z.string(), metadata: z.record(z.string(), z.unknown()).nullable(), configuration: z.record(z.string(), z.unknown()).nullable().optional() })
    .optional(),
});
export type ManifestPart = z.infer<typeof part>;

const probe = z.object({
  repositoryId: z.number().int(),
  repository: z.string(),
  branch: z.string(),
  /** A symbol defined in `path`: searched for by name, and looked up in the graph, after a restore. */
  symbol: z.string(),
  path: z.string(),
});
export type Probe = z.infer<typeof probe>;

export const manifestSchema = z.object({
  product: z.literal(PRODUCT),
  format: z.number().int(),
  productVersion: z.string(),
  createdAt: z.string(),
  /** The instance backed up, or null for every instance (and the deployment-wide tables: tokens, audit). */
  instance: z.string().nullable(),
  /** Where it came from: the Postgres schema (also the graph namespace) and the Chroma collection prefix. */
  source: z.object({ schema: z.string(), collectionPrefix: z.string(), host: z.string() }),
  stores: z.object({ postgres: z.string(), chroma: z.string(), neo4j: z.string() }),
  /** Migrations applied where the set was taken: a restore needs every one of them (it may have more). */
  migrations: z.array(z.string()),
  /** Each branch's published commit: the cut the set was taken at. */
  branches: z.array(z.object({ repositoryId: z.number().int(), repository: z.string(), branch: z.string(), commit: z.string().nullable() })),
  graphSchema: z.array(z.string()),
  probes: z.array(probe),
  parts: z.array(part),
  /** SHA-256 of this manifest with `checksum` left out (JSON, keys as written). */
  checksum: z.string().regex(/^[0-9a-f]{64}$/),
});
export type Manifest = z.infer<typeof manifestSchema>;

export function manifestChecksum(manifest: Omit<Manifest, 'checksum'>): string {
  const { checksum: _ignored, ...rest } = manifest as Manifest;
  return createHash('sha256').update(JSON.stringify(rest)).digest('hex');
}

/** Totals per store, for listings and comparisons. */
export function countsOf(manifest: Pick<Manifest, 'parts'>): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const p of manifest.parts) counts[p.name] = p.count;
  return counts;
}

export function summaryOf(manifest: Pick<Manifest, 'parts'>): { postgresRows: number; vectors: number; graphNodes: number; graphRelationships: number } {
  let postgresRows = 0;
  let vectors = 0;
  let graphNodes = 0;
  let graphRelationships = 0;
  for (const p of manifest.parts) {
    if (p.store === 'postgres') postgresRows += p.count;
    else if (p.store === 'chroma') vectors += p.count;
    else if (p.name === 'neo4j:nodes') graphNodes += p.count;
    else graphRelationships += p.count;
  }
  return { postgresRows, vectors, graphNodes, graphRelationships };
}
