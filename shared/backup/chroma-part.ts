import { createWriteStream } from 'node:fs';
import type { Collection } from 'chromadb';
import type pg from 'pg';
import type { ChromaConnection } from '../stores/chroma.connection.ts';
import type { ManifestPart } from './manifest.ts';
import { ndjsonBatches, ndjsonWriter } from './streams.ts';

/** Records per `get` by ids and per upsert: well under Chroma's per-request cap. */
const PAGE = 500;

interface VectorLine {
  id: string;
  /** Float32 little-endian, base64: exact, and a third of the size of JSON numbers. */
  embedding: string | null;
  document: string | null;
  metadata: Record<string, unknown> | null;
}

export interface ScopedCollection {
  name: string;
  repositoryId: number;
  branch: string;
  model: string;
  metadata: Record<string, unknown> | null;
  configuration: Record<string, unknown> | null;
}

const toBase64 = (v: ArrayLike<number>) => Buffer.from(Float32Array.from(v).buffer).toString('base64');
const fromBase64 = (s: string) => Array.from(new Float32Array(new Uint8Array(Buffer.from(s, 'base64')).buffer));

/**
 * This deployment's collections (by prefix) of the given repositories: one per embedding model and branch,
 * recognised by name and by the metadata the vector store gives each collection it creates.
 */
export async function collectionsOfRepositories(chroma: ChromaConnection, repositoryIds: Set<number>): Promise<ScopedCollection[]> {
  const found: ScopedCollection[] = [];
  for (let offset = 0; ; offset += 100) {
    const page = await chroma.client.listCollections({ limit: 100, offset });
    for (const c of page) {
      const meta = (c.metadata ?? {}) as Record<string, unknown>;
      if (!c.name.startsWith(`${chroma.collectionPrefix}-`)) continue;
      if (typeof meta.repository_id !== 'number' || !repositoryIds.has(meta.repository_id)) continue;
      if (typeof meta.branch !== 'string' || typeof meta.model !== 'string') continue;
      const configuration = (c as unknown as { configuration?: Record<string, unknown> }).configuration ?? null;
      found.push({ name: c.name, repositoryId: meta.repository_id, branch: meta.branch, model: meta.model, metadata: meta, configuration });
    }
    if (page.length < 100) break;
  }
  return found.sort((a, b) => a.name.localeCompare(b.name));
}

/**
 * Each collection's vectors of live chunks (as the Postgres snapshot sees them, so a vector of a run not yet
 * published, or of a chunk a publish replaced, is not taken): ids, embeddings, documents and metadata, read
 * by ids a page at a time and streamed to `<dir>/chroma/<n>.ndjson`.
 */
export async function exportChroma(
  chroma: ChromaConnection,
  snapshot: pg.ClientBase,
  dir: string,
  collections: ScopedCollection[],
  semanticModels: Set<string>,
  onCollection: (index: number, total: number) => void,
): Promise<ManifestPart[]> {
  const parts: ManifestPart[] = [];
  for (const [i, c] of collections.entries()) {
    onCollection(i, collections.length);
    // The model tier records what it embedded: only those vectors are its own.
    const { rows } = semanticModels.has(c.model)
      ? await snapshot.query<{ id: string }>(
          `SELECT c.id FROM chunks c JOIN chunk_model_vectors v ON v.chunk_id = c.id AND v.model_id = $3 AND v.status = 'ok'
            WHERE c.repository_id = $1 AND c.branch = $2 ORDER BY c.id`,
          [c.repositoryId, c.branch, c.model],
        )
      : await snapshot.query<{ id: string }>(`SELECT id FROM chunks WHERE repository_id = $1 AND branch = $2 ORDER BY id`, [c.repositoryId, c.branch]);
    const collection = await chroma.client.getCollection({ name: c.name, embeddingFunction: null } as never);
    const file = `chroma/${String(i).padStart(4, '0')}.ndjson`;
    const out = ndjsonWriter(createWriteStream(`${dir}/${file}`));
    for (let at = 0; at < rows.length; at += PAGE) {
      const ids = rows.slice(at, at + PAGE).map((r) => r.id);
      const got = await collection.get({ ids, include: ['embeddings', 'documents', 'metadatas'] as never });
      for (const [j, id] of got.ids.entries()) {
        const embedding = got.embeddings?.[j];
        await out.write({
          id,
          embedding: embedding ? toBase64(embedding) : null,
          document: got.documents?.[j] ?? null,
          metadata: (got.metadatas?.[j] as Record<string, unknown> | null) ?? null,
        } satisfies VectorLine);
      }
    }
    const written = await out.end();
    parts.push({
      file,
      name: `chroma:${c.name.slice(chroma.collectionPrefix.length)}`,
      store: 'chroma',
      count: written.count,
      bytes: written.bytes,
      sha256: written.sha256,
      collection: { suffix: c.name.slice(chroma.collectionPrefix.length), metadata: c.metadata, configuration: c.configuration },
    });
  }
  return parts;
}

/**
 * Brings each collection of the set back under this deployment's prefix: created when missing (with the
 * set's metadata), else kept (so processes holding it open keep working) and made to hold exactly the set's
 * vectors: others removed, the set's upserted.
 */
export async function importChroma(chroma: ChromaConnection, dir: string, parts: ManifestPart[], onCollection: (index: number, total: number) => void): Promise<void> {
  for (const [i, part] of parts.entries()) {
    onCollection(i, parts.length);
    const name = `${chroma.collectionPrefix}${part.collection!.suffix}`;
    const collection: Collection = await chroma.client.getOrCreateCollection({
      name,
      embeddingFunction: null,
      metadata: (part.collection!.metadata ?? undefined) as never,
    } as never);
    const keep = new Set<string>();
    for await (const batch of ndjsonBatches<VectorLine>(`${dir}/${part.file}`, PAGE)) {
      for (const line of batch) keep.add(line.id);
      const withVectors = batch.filter((l) => l.embedding !== null);
      if (withVectors.length === 0) continue;
      await chroma.records.upsert(collection, {
        ids: withVectors.map((l) => l.id),
        embeddings: withVectors.map((l) => fromBase64(l.embedding!)),
        metadatas: withVectors.map((l) => (l.metadata ?? {}) as Record<string, string | number | boolean>),
      });
    }
    const present = (await collection.get({ include: [] as never })).ids;
    const extra = present.filter((id) => !keep.has(id));
    for (let at = 0; at < extra.length; at += PAGE) await chroma.records.delete(collection, extra.slice(at, at + PAGE));
  }
}

/** Drops collections (of repositories a restore removes, or collections the set does not have). */
export async function dropCollections(chroma: ChromaConnection, names: string[]): Promise<void> {
  for (const name of names) await chroma.client.deleteCollection({ name });
}

/** Vectors per collection (by name suffix) of the given repositories, for comparisons after a restore. */
export async function countChroma(chroma: ChromaConnection, repositoryIds: Set<number>): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const c of await collectionsOfRepositories(chroma, repositoryIds)) {
    const collection = await chroma.client.getCollection({ name: c.name, embeddingFunction: null } as never);
    counts[`chroma:${c.name.slice(chroma.collectionPrefix.length)}`] = await collection.count();
  }
  return counts;
}
