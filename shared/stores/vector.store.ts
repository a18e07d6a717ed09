import { createHash } from 'node:crypto';
import { ChromaNotFoundError, type Collection } from 'chromadb';
import { withinChromaDeadline, type ChromaConnection } from './chroma.connection.ts';

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

export interface RepositoryBranchRef {
  repositoryId: number;
  branch: string;
}

export interface VectorFilter {
  repositoryBranches?: RepositoryBranchRef[];
}

/**
 * Vectors per upsert request. Chroma's write cost per vector falls with the
 * request size (measured on 2 cores, 20k vectors with the embed job's
 * metadata: 0.78 ms CPU each in requests of 100, 0.60 ms in 500, 0.46 ms in
 * 2,000); Chroma caps one request at a few thousand, so stay under it.
 */
const WRITE_BATCH = 2000;

/**
 * HNSW settings, as collection metadata: ef_construction 64 and 12 neighbours
 * build with 25% less CPU than Chroma's defaults (100, 16) for recall@40 0.85
 * instead of 0.90 against exact search; 32 and 8 save little more and drop
 * recall to 0.70 (bench/results/hnsw.md). A collection holds one branch of one
 * repository, small enough for that graph. Given as `hnsw:` metadata keys,
 * which Chroma 1.0 applies as they are; the newer `configuration` object
 * built the same graph with 16% more CPU there.
 */
const HNSW = { 'hnsw:space': 'cosine', 'hnsw:construction_ef': 64, 'hnsw:M': 12, 'hnsw:search_ef': 100 } as const;

/** Chroma collection names allow [a-zA-Z0-9._-], 3-512 chars, starting and ending alphanumeric. */
function sanitize(name: string): string {
  const cleaned = name.replace(/[^a-zA-Z0-9._-]+/g, '-').replace(/^[^a-zA-Z0-9]+|[^a-zA-Z0-9]+$/g, '');
  return cleaned.length >= 3 ? cleaned.slice(0, 512) : `${cleaned}-vec`;
}

/**
 * Vectors in ChromaDB: one collection per embedding space and repository
 * branch, cosine distance. Chroma answers an unfiltered nearest-neighbour
 * query from its HNSW index in milliseconds but a metadata-filtered one by
 * scanning (30-50× slower on 40k vectors), so scoping is done by collection,
 * never by `where`. Postgres decides which ids are visible.
 */
export function createVectorStore(chroma: ChromaConnection, modelId: string) {
  const nameIn = (model: string, ref: RepositoryBranchRef) =>
    `${sanitize(`${chroma.collectionPrefix}-${model}`)}-r${ref.repositoryId}-${createHash('sha256').update(ref.branch).digest('hex').slice(0, 12)}`;
  const nameOf = (ref: RepositoryBranchRef) => nameIn(modelId, ref);
  const collections = new Map<string, Promise<Collection>>();

  /**
   * This deployment's collections of one repository (one branch, if given) in every embedding space,
   * this one's and any earlier model's: each is recognised by its name, rebuilt from its own metadata,
   * so a collection of another prefix, repository or branch is never taken for one of these.
   */
  async function collectionsOf(repositoryId: number, branch?: string): Promise<Array<{ name: string; model: string; branch: string }>> {
    const found: Array<{ name: string; model: string; branch: string }> = [];
    for (let offset = 0; ; offset += 100) {
      const page = await chroma.client.listCollections({ limit: 100, offset });
      for (const c of page) {
        const meta = c.metadata ?? {};
        if (meta.repository_id !== repositoryId || typeof meta.model !== 'string' || typeof meta.branch !== 'string') continue;
        if (branch !== undefined && meta.branch !== branch) continue;
        if (c.name === nameIn(meta.model, { repositoryId, branch: meta.branch })) found.push({ name: c.name, model: meta.model, branch: meta.branch });
      }
      if (page.length < 100) break;
    }
    return found;
  }

  function open(ref: RepositoryBranchRef): Promise<Collection> {
    const name = nameOf(ref);
    let collection = collections.get(name);
    if (!collection) {
      collection = chroma.client.getOrCreateCollection({
        name,
        embeddingFunction: null,
        metadata: { ...HNSW, model: modelId, repository_id: ref.repositoryId, branch: ref.branch },
      });
      collection.catch(() => collections.delete(name));
      collections.set(name, collection);
    }
    return collection;
  }

  /**
   * An existing collection, or null when there is none: reads never create empty collections. Any
   * other failure (Chroma down) is thrown, never taken for "no vectors".
   */
  async function existing(ref: RepositoryBranchRef): Promise<Collection | null> {
    const cached = collections.get(nameOf(ref));
    if (cached) return cached;
    try {
      const collection = await withinChromaDeadline(chroma.client.getCollection({ name: nameOf(ref) }), chroma.readTimeoutMs, 'getCollection');
      collections.set(nameOf(ref), Promise.resolve(collection));
      return collection;
    } catch (err) {
      if (err instanceof ChromaNotFoundError) return null;
      throw err;
    }
  }

  return {
    collectionName: nameOf,

    async upsert(records: VectorRecord[]): Promise<void> {
      const groups = new Map<string, { ref: RepositoryBranchRef; records: VectorRecord[] }>();
      for (const r of records) {
        const ref = { repositoryId: r.metadata.repository_id, branch: r.metadata.branch };
        const key = nameOf(ref);
        const group = groups.get(key) ?? { ref, records: [] };
        group.records.push(r);
        groups.set(key, group);
      }
      for (const { ref, records: rs } of groups.values()) {
        const c = await open(ref);
        for (let i = 0; i < rs.length; i += WRITE_BATCH) {
          const slice = rs.slice(i, i + WRITE_BATCH);
          await chroma.records.upsert(c, { ids: slice.map((r) => r.id), embeddings: slice.map((r) => r.embedding), metadatas: slice.map((r) => r.metadata) });
        }
      }
    },

    async delete(ref: RepositoryBranchRef, ids: string[]): Promise<void> {
      if (ids.length === 0) return;
      const c = await existing(ref);
      if (!c) return;
      for (let i = 0; i < ids.length; i += WRITE_BATCH) await chroma.records.delete(c, ids.slice(i, i + WRITE_BATCH));
    },

    /** Drops every collection of a repository: all branches, in every embedding space it was ever indexed with. */
    async deleteRepository(repositoryId: number): Promise<void> {
      for (const { name } of await collectionsOf(repositoryId)) {
        collections.delete(name);
        await chroma.client.deleteCollection({ name });
      }
    },

    /** Drops a branch's collections of other embedding models (left by a model change), but those of `keep`; returns their models. */
    async deleteOtherModels(ref: RepositoryBranchRef, keep: string[] = []): Promise<string[]> {
      const others = (await collectionsOf(ref.repositoryId, ref.branch)).filter((c) => c.model !== modelId && !keep.includes(c.model));
      for (const { name } of others) await chroma.client.deleteCollection({ name });
      return others.map((c) => c.model);
    },

    /** How many vectors a branch has in this embedding space (0 without a collection). */
    async count(ref: RepositoryBranchRef): Promise<number> {
      const c = await existing(ref);
      return c ? c.count() : 0;
    },

    /** Nearest neighbours across the given repository branches, closest first. */
    async query(embedding: number[], k: number, filter: VectorFilter): Promise<Array<{ id: string; distance: number }>> {
      const refs = filter.repositoryBranches ?? [];
      const perCollection = await Promise.all(
        refs.map(async (ref) => {
          const c = await existing(ref);
          if (!c) return [];
          const { ids, distances } = await chroma.records.query(c, embedding, k);
          return ids.map((id, i) => ({ id, distance: distances[i]! }));
        }),
      );
      return perCollection
        .flat()
        .sort((a, b) => a.distance - b.distance)
        .slice(0, k);
    },

    async ids(filter: VectorFilter): Promise<string[]> {
      const out: string[] = [];
      for (const ref of filter.repositoryBranches ?? []) {
        const c = await existing(ref);
        if (c) out.push(...(await c.get({ include: [] as never })).ids);
      }
      return out;
    },
  };
}

export type VectorStore = ReturnType<typeof createVectorStore>;
