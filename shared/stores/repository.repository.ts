import { notifiedCache } from './notified-cache.ts';
import type { PostgresConnection } from './postgres.connection.ts';

export interface Repository {
  id: number;
  name: string;
  instance: string;
  sourceUrl: string | null;
  localPath: string | null;
  defaultBranch: string | null;
  includeGlobs: string[];
  excludeGlobs: string[];
  createdAt: Date;
}

export type BranchStatus = 'pending' | 'indexing' | 'ready' | 'failed';

export interface RepositoryBranch {
  repositoryId: number;
  branch: string;
  indexedCommit: string | null;
  status: BranchStatus;
  lastError: string | null;
  lastJobId: string | null;
  indexedAt: Date | null;
  fileCount: number;
  chunkCount: number;
}

export interface NewRepository {
  name: string;
  instance?: string;
  sourceUrl?: string | null;
  localPath?: string | null;
  defaultBranch: string;
  includeGlobs?: string[];
  excludeGlobs?: string[];
  webhookSecret?: string | null;
}

const REPO_COLUMNS = `id, name, instance, source_url, local_path, default_branch, include_globs, exclude_globs, created_at`;
const BRANCH_COLUMNS = `repository_id, branch, indexed_commit, status, last_error, last_job_id, indexed_at, file_count, chunk_count`;

function toRepository(row: Record<string, unknown>): Repository {
  return {
    id: Number(row.id),
    name: row.name as string,
    instance: row.instance as string,
    sourceUrl: row.source_url as string | null,
    localPath: row.local_path as string | null,
    defaultBranch: row.default_branch as string | null,
    includeGlobs: row.include_globs as string[],
    excludeGlobs: row.exclude_globs as string[],
    createdAt: row.created_at as Date,
  };
}

function toBranch(row: Record<string, unknown>): RepositoryBranch {
  return {
    repositoryId: Number(row.repository_id),
    branch: row.branch as string,
    indexedCommit: row.indexed_commit as string | null,
    status: row.status as BranchStatus,
    lastError: row.last_error as string | null,
    lastJobId: row.last_job_id as string | null,
    indexedAt: row.indexed_at as Date | null,
    fileCount: Number(row.file_count),
    chunkCount: Number(row.chunk_count),
  };
}

type CatalogEntry = Repository & { branches: RepositoryBranch[] };

/** Channel the catalog tables' triggers notify on (migration `catalog_notify`), with the schema as payload. */
const CATALOG_CHANNEL = 'pk_catalog_changed';

async function loadCatalog(pg: PostgresConnection): Promise<CatalogEntry[]> {
  const { rows } = await pg.pool.query(`SELECT ${REPO_COLUMNS} FROM repositories ORDER BY name`);
  const repos = rows.map(toRepository);
  if (repos.length === 0) return [];
  const branches = await pg.pool.query(`SELECT ${BRANCH_COLUMNS} FROM repository_branches WHERE repository_id = ANY($1) ORDER BY branch`, [
    repos.map((r) => r.id),
  ]);
  const byRepo = new Map<number, RepositoryBranch[]>();
  for (const row of branches.rows) {
    const b = toBranch(row);
    byRepo.set(b.repositoryId, [...(byRepo.get(b.repositoryId) ?? []), b]);
  }
  return repos.map((r) => ({ ...r, branches: byRepo.get(r.id) ?? [] }));
}

/** The catalog cache of a connection (see `createNotifiedCache`), shared by the repositories that write catalog tables. */
export function catalogCache(pg: PostgresConnection) {
  const cache = notifiedCache<'all', CatalogEntry[]>(pg, CATALOG_CHANNEL);
  return { get: () => cache.get('all', () => loadCatalog(pg)), invalidate: cache.invalidate };
}

/** Repositories and their indexed branches in Postgres. */
export function createRepositoryRepository(pg: PostgresConnection) {
  const catalog = catalogCache(pg);
  const afterWrite = <T>(write: Promise<T>) => write.finally(catalog.invalidate);
  return {
    /** Registers a repository and its default branch in one transaction; returns null when the name is taken. */
    async create(input: NewRepository): Promise<Repository | null> {
      return afterWrite(pg.transaction(async (client) => {
        const { rows } = await client.query(
          `INSERT INTO repositories (name, instance, source_url, local_path, default_branch, include_globs, exclude_globs, webhook_secret)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
           ON CONFLICT (name) DO NOTHING
           RETURNING ${REPO_COLUMNS}`,
          [
            input.name,
            input.instance ?? 'private',
            input.sourceUrl ?? null,
            input.localPath ?? null,
            input.defaultBranch,
            input.includeGlobs ?? [],
            input.excludeGlobs ?? [],
            input.webhookSecret ?? null,
          ],
        );
        if (rows.length === 0) return null;
        const repo = toRepository(rows[0]);
        await client.query(`INSERT INTO repository_branches (repository_id, branch) VALUES ($1, $2)`, [repo.id, input.defaultBranch]);
        return repo;
      }));
    },

    async findByName(name: string): Promise<Repository | null> {
      const { rows } = await pg.pool.query(`SELECT ${REPO_COLUMNS} FROM repositories WHERE name = $1`, [name]);
      return rows[0] ? toRepository(rows[0]) : null;
    },

    async findById(id: number): Promise<Repository | null> {
      const { rows } = await pg.pool.query(`SELECT ${REPO_COLUMNS} FROM repositories WHERE id = $1`, [id]);
      return rows[0] ? toRepository(rows[0]) : null;
    },

    /**
     * Every repository (of the given instances) with its branches. Searches
     * call this on every request, so the whole catalog is cached while a
     * LISTEN connection guarantees that a change reaches this process: the
     * tables' triggers notify on commit and the cache is dropped.
     */
    async list(filter: { instances?: string[] } = {}): Promise<Array<Repository & { branches: RepositoryBranch[] }>> {
      const all = await catalog.get();
      return filter.instances ? all.filter((r) => filter.instances!.includes(r.instance)) : [...all];
    },

    async getBranch(repositoryId: number, branch: string): Promise<RepositoryBranch | null> {
      const { rows } = await pg.pool.query(
        `SELECT ${BRANCH_COLUMNS} FROM repository_branches WHERE repository_id = $1 AND branch = $2`,
        [repositoryId, branch],
      );
      return rows[0] ? toBranch(rows[0]) : null;
    },

    /** Adds a branch to index (idempotent). */
    async ensureBranch(repositoryId: number, branch: string): Promise<RepositoryBranch> {
      await afterWrite(pg.pool.query(`INSERT INTO repository_branches (repository_id, branch) VALUES ($1, $2) ON CONFLICT DO NOTHING`, [repositoryId, branch]));
      return (await this.getBranch(repositoryId, branch))!;
    },

    async setBranchStatus(
      repositoryId: number,
      branch: string,
      update: { status: BranchStatus; lastError?: string | null; lastJobId?: string | null },
    ): Promise<void> {
      await afterWrite(
        pg.pool.query(
          `UPDATE repository_branches
              SET status = $3, last_error = $4, last_job_id = coalesce($5, last_job_id), updated_at = now()
            WHERE repository_id = $1 AND branch = $2`,
          [repositoryId, branch, update.status, update.lastError ?? null, update.lastJobId ?? null],
        ),
      );
    },

    /** Removes the repository and, by cascade, its branches, files and chunks. */
    async delete(id: number): Promise<boolean> {
      return afterWrite(pg.transaction(async (client) => {
        await client.query(`DELETE FROM chunk_staging WHERE repository_id = $1`, [id]);
        await client.query(`DELETE FROM file_staging WHERE repository_id = $1`, [id]);
        await client.query(`DELETE FROM graph_staging WHERE repository_id = $1`, [id]);
        const { rowCount } = await client.query(`DELETE FROM repositories WHERE id = $1`, [id]);
        return (rowCount ?? 0) > 0;
      }));
    },
  };
}

export type RepositoryRepository = ReturnType<typeof createRepositoryRepository>;
