import { withPublishBarrier } from '../backup/barrier.ts';
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { AppError, badRequest, conflict, notFound } from '../errors.ts';
import type { Platform } from '../platform.ts';
import { GitError, openGitWorkspace, redactSource } from '../stores/git.workspace.ts';
import type { Repository } from '../stores/repository.repository.ts';
import { workspaceFor } from './index-run.ts';
import { validateGlobs } from './file-filter.ts';

export interface AddRepositoryInput {
  /** An https (or http, ssh, file) Git URL, or the path of a local Git repository. */
  source: string;
  name?: string;
  branch?: string;
  instance?: string;
  include?: string[];
  exclude?: string[];
  /** Secret of this repository's push webhook (HMAC key on GitHub, token on GitLab). */
  webhookSecret?: string;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

/** Derives a repository name from its URL or path: `https://host/org/my-repo.git` → `my-repo`. */
export function nameFromSource(source: string): string {
  const last = source.replace(/[/\\]+$/, '').split(/[/\\:]/).pop() ?? '';
  return last.replace(/\.git$/, '').replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^[^A-Za-z0-9]+/, '').slice(0, 100);
}

function classify(source: string): { sourceUrl: string } | { localPath: string } {
  if (/^(https?|ssh|git|file):\/\//.test(source) || /^[\w.-]+@[\w.-]+:/.test(source)) {
    let url: URL | undefined;
    try {
      url = new URL(source);
    } catch {
      // scp-like ssh form (git@host:org/repo.git) is not a URL but git accepts it
    }
    if (url && (url.username || url.password)) {
      throw badRequest('put credentials in GIT_TOKEN, not in the repository URL (it would be stored and logged)', 'credentials_in_url');
    }
    return { sourceUrl: source };
  }
  const resolved = path.resolve(source);
  if (!existsSync(resolved) || !statSync(resolved).isDirectory()) {
    throw badRequest(`${source} is neither a Git URL (https://…) nor an existing folder`, 'invalid_source');
  }
  if (!existsSync(path.join(resolved, '.git')) && !existsSync(path.join(resolved, 'HEAD'))) {
    throw badRequest(`${resolved} is not a Git repository (no .git folder)`, 'not_a_repository');
  }
  return { localPath: resolved };
}

function gitFailure(err: unknown): never {
  if (err instanceof GitError) throw new AppError(err.retryable ? 502 : 422, 'git_failed', err.message);
  throw err;
}

/** Registering, removing and reindexing repositories: what the CLI, API and MCP tools call. */
export function createRepositoryService(platform: Platform) {
  const { repositories, config } = platform;

  async function get(name: string): Promise<Repository> {
    const repo = await repositories.findByName(name);
    if (!repo) throw notFound(`no repository named "${name}"`, 'repository_not_found');
    return repo;
  }

  const service = {
    get,

    async add(input: AddRepositoryInput): Promise<Repository> {
      const where = classify(input.source.trim());
      const name = input.name ?? nameFromSource(input.source);
      if (!NAME.test(name)) {
        throw badRequest(`repository name "${name}" must be 1-100 letters, digits, ".", "_" or "-", starting with a letter or digit`, 'invalid_name');
      }
      validateGlobs([...(input.include ?? []), ...(input.exclude ?? [])]);
      if (await repositories.findByName(name)) throw conflict(`a repository named "${name}" already exists`, 'repository_exists');
      let branch = input.branch;
      if (!branch) {
        // A throwaway mirror just to ask the remote for its HEAD; indexing makes the real one.
        const probe = openGitWorkspace({
          root: path.join(config.workspaceDir, '.probe'),
          key: `${name}-${process.pid}-${Date.now()}`,
          source: 'sourceUrl' in where ? where.sourceUrl : where.localPath,
          credentials: { token: config.gitToken },
        });
        try {
          branch = await probe.defaultBranch();
        } catch (err) {
          gitFailure(err);
        } finally {
          await probe.remove();
        }
      }
      if (input.instance !== undefined && !config.instances.includes(input.instance)) {
        throw badRequest(`unknown instance "${input.instance}": use one of ${config.instances.join(', ')}`, 'invalid_instance');
      }
      const created = await repositories.create({
        name,
        instance: input.instance ?? config.instances[0]!,
        ...('sourceUrl' in where ? { sourceUrl: where.sourceUrl } : { localPath: where.localPath }),
        defaultBranch: branch,
        includeGlobs: input.include ?? [],
        excludeGlobs: input.exclude ?? [],
        webhookSecret: input.webhookSecret ?? null,
      });
      if (!created) throw conflict(`a repository named "${name}" already exists`, 'repository_exists');
      return created;
    },

    /** Enqueues a reindex of one branch (the default one unless given). Repeated calls coalesce. */
    async requestIndex(name: string, options: { branch?: string; full?: boolean } = {}): Promise<{ jobId: string; repository: Repository; branch: string }> {
      const repo = await get(name);
      const branch = options.branch ?? repo.defaultBranch!;
      await repositories.ensureBranch(repo.id, branch);
      const { id } = await platform.queues.enqueue('index-repository', { repositoryId: repo.id, branch, full: options.full ?? false });
      return { jobId: id, repository: repo, branch };
    },

    /**
     * Registers a repository and enqueues its first run, all or nothing: when the run cannot be enqueued
     * (Redis down), the registration is taken back, so trying again does not meet "already exists".
     */
    async addAndIndex(input: AddRepositoryInput): Promise<{ repository: Repository; jobId: string; branch: string }> {
      const created = await service.add(input);
      try {
        const { jobId, branch } = await service.requestIndex(created.name);
        return { repository: created, jobId, branch };
      } catch (err) {
        await repositories.delete(created.id).catch(() => undefined);
        throw err;
      }
    },

    /** Removes a repository from every store: Postgres rows, its vectors, its Git mirror. */
    async remove(name: string): Promise<void> {
      const repo = await get(name);
      // Not while a backup is taking its set (it would find the rows but not the vectors).
      await withPublishBarrier(platform.stores.postgres, async () => {
        await platform.vectors.deleteRepository(repo.id);
        await platform.graph.deleteRepository(repo.id);
        await repositories.delete(repo.id);
      });
      await workspaceFor(repo, { workspaceDir: config.workspaceDir, gitToken: undefined }).remove();
    },

    describeSource(repo: Repository): string {
      return repo.sourceUrl ? redactSource(repo.sourceUrl) : repo.localPath!;
    },
  };
  return service;
}

export type RepositoryService = ReturnType<typeof createRepositoryService>;
