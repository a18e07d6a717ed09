import type { Collection, Where } from 'chromadb';
import type { ChromaConnection } from './chroma.connection.ts';

export interface VectorRecord {
  id: string;
  embedding: number[];
  metadata: {
    repository_id: number;
    branch: string;
    path: string;
    language: string;
    start_line: number;
    end_line: number;
    symbol: string;
    kind: string;
    commit: string;
  };
}

export interface VectorFilter {
  repositoryBranches?: Array<{ repositoryId: number; branch: string }>;
  language?: string;
}

/** Chroma caps one request; stay well under it so a large batch never fails as a whole. */
const WRITE_BATCH = 1000;

/** Chroma collection names allow [a-zA-Z0-9._-], 3-512 chars, starting and ending alphanumeric. */
export function collectionName(prefix: string, modelId: string): string {
  const name = `${prefix}-${modelId}`.replace(/[^a-zA-Z0-9._-]+/g, '-').replace(/^[^a-zA-Z0-9]+|[^a-zA-Z0-9]+$/g, '');
  return name.length >= 3 ? name.slice(0, 512) : `${name}-vec`;
}

function toWhere(filter: VectorFilter): Where | undefined {
  const clauses: Where[] = [];
  if (filter.repositoryBranches && filter.repositoryBranches.length > 0) {
    const perRepo: Where[] = filter.repositoryBranches.map(
      (rb): Where => ({ $and: [{ repository_id: { $eq: rb.repositoryId } } as Where, { branch: { $eq: rb.branch } } as Where] }),
    );
    clauses.push(perRepo.length === 1 ? perRepo[0]! : { $or: perRepo });
  }
  if (filter.language) clauses.push({ language: { $eq: filter.language } });
  if (clauses.length === 0) return undefined;
  return clauses.length === 1 ? clauses[0] : { $and: clauses };
}

/**
 * Vectors in ChromaDB, one collection per embedding space (model and
 * dimensions), cosine distance. Postgres decides which ids are visible;
 * this store only holds and finds vectors.
 */
export function createVectorStore(chroma: ChromaConnection, modelId: string) {
  const name = collectionName(chroma.collectionPrefix, modelId);
  let collection: Promise<Collection> | undefined;
  const open = () =>
    (collection ??= chroma.client
      .getOrCreateCollection({ name, embeddingFunction: null, configuration: { hnsw: { space: 'cosine' } }, metadata: { model: modelId } })
      .catch((err) => {
        collection = undefined;
        throw err;
      }));

  return {
    name,
    async upsert(records: VectorRecord[]): Promise<void> {
      const c = await open();
      for (let i = 0; i < records.length; i += WRITE_BATCH) {
        const slice = records.slice(i, i + WRITE_BATCH);
        await c.upsert({
          ids: slice.map((r) => r.id),
          embeddings: slice.map((r) => r.embedding),
          metadatas: slice.map((r) => r.metadata),
        });
      }
    },
    async delete(ids: string[]): Promise<void> {
      if (ids.length === 0) return;
      const c = await open();
      for (let i = 0; i < ids.length; i += WRITE_BATCH) await c.delete({ ids: ids.slice(i, i + WRITE_BATCH) });
    },
    async deleteRepository(repositoryId: number): Promise<void> {
      const c = await open();
      await c.delete({ where: { repository_id: { $eq: repositoryId } } });
    },
    async query(embedding: number[], k: number, filter: VectorFilter): Promise<Array<{ id: string; distance: number }>> {
      const c = await open();
      const where = toWhere(filter);
      const result = await c.query({
        queryEmbeddings: [embedding],
        nResults: k,
        ...(where ? { where } : {}),
        include: ['distances'],
      });
      const ids = result.ids[0] ?? [];
      const distances = result.distances[0] ?? [];
      return ids.map((id, i) => ({ id, distance: distances[i] ?? 1 }));
    },
    async count(): Promise<number> {
      return (await open()).count();
    },
    async ids(filter: VectorFilter): Promise<string[]> {
      const c = await open();
      const where = toWhere(filter);
      const result = await c.get({ ...(where ? { where } : {}), include: [] });
      return result.ids;
    },
  };
}

export type VectorStore = ReturnType<typeof createVectorStore>;
