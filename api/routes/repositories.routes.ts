import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { badRequest, notFound } from '../../shared/errors.ts';
import type { RepositoryService } from '../../shared/indexing/repository.service.ts';
import type { Platform } from '../../shared/platform.ts';
import type { Repository, RepositoryBranch } from '../../shared/stores/repository.repository.ts';
import { assertInstance, bodyInstanceCheck } from '../plugins/auth.plugin.ts';
import { semanticCoverage, type BranchSemanticCoverage } from '../../shared/semantic/coverage.ts';
import { branchName, commaList, errorResponses, indexGlob, repoName } from '../schemas/common.ts';

const branchSchema = z.object({
  branch: z.string(),
  status: z.enum(['pending', 'indexing', 'ready', 'failed']),
  indexedCommit: z.string().nullable(),
  indexedAt: z.string().nullable(),
  fileCount: z.number(),
  chunkCount: z.number(),
  lastError: z.string().nullable(),
  lastJobId: z.string().nullable(),
  semantic: z
    .object({ model: z.string(), embedded: z.number(), failed: z.number(), total: z.number(), complete: z.boolean() })
    .nullable()
    .describe("the local model's coverage: chunks with a model vector (filled in after each run, in the background) of all; null when the model tier is off"),
});
const repositorySchema = z.object({
  name: z.string(),
  instance: z.string(),
  source: z.string().describe('Git URL (credentials removed) or local path'),
  defaultBranch: z.string().nullable(),
  include: z.array(z.string()),
  exclude: z.array(z.string()),
  createdAt: z.string(),
  branches: z.array(branchSchema),
});

function present(
  service: RepositoryService,
  repo: Repository,
  branches: RepositoryBranch[],
  coverage: (b: RepositoryBranch) => BranchSemanticCoverage | null,
): z.infer<typeof repositorySchema> {
  return {
    name: repo.name,
    instance: repo.instance,
    source: service.describeSource(repo),
    defaultBranch: repo.defaultBranch,
    include: repo.includeGlobs,
    exclude: repo.excludeGlobs,
    createdAt: repo.createdAt.toISOString(),
    branches: branches.map((b) => ({
      branch: b.branch,
      status: b.status,
      indexedCommit: b.indexedCommit,
      indexedAt: b.indexedAt?.toISOString() ?? null,
      fileCount: b.fileCount,
      chunkCount: b.chunkCount,
      lastError: b.lastError,
      lastJobId: b.lastJobId,
      semantic: coverage(b),
    })),
  };
}

export const repositoryRoutes: FastifyPluginAsyncZod<{ platform: Platform; repos: RepositoryService }> = async (app, { platform, repos }) => {
  /** A repository the caller's token may see; 404 (not 403) for others, so names of other instances do not leak. */
  async function visible(request: Parameters<typeof assertInstance>[0], name: string) {
    const repo = await platform.repositories.findByName(name);
    if (!repo || !request.principal?.instances.includes(repo.instance)) throw notFound(`no repository named "${name}"`, 'repository_not_found');
    return repo;
  }

  app.post(
    '/repositories',
    {
      onRequest: app.requireScope('write'),
      preValidation: bodyInstanceCheck(platform.config.instances),
      config: { audit: { action: 'repository.add' } },
      schema: {
        tags: ['repositories'],
        summary: 'Register a repository and start indexing it',
        // Strict: a misspelt optional field (`webhook_secret`, `branches`) would otherwise be dropped without a word.
        body: z
          .object({
            source: z.string().min(1).max(2000).describe('https Git URL, or the path of a Git repository on the server'),
            name: z.string().min(1).max(100).optional().describe('name to refer to it by (default: from the URL)'),
            branch: branchName.optional().describe("branch to index (default: the remote's default branch)"),
            instance: z.string().min(1).max(100).optional().describe('instance it belongs to (default: the first configured)'),
            include: z.array(indexGlob).max(100).optional().describe('only index paths matching these globs'),
            exclude: z.array(indexGlob).max(100).optional().describe('never index paths matching these globs'),
            webhookSecret: z.string().min(16).max(256).optional().describe("secret of this repository's push webhook"),
          })
          .strict(),
        response: { 201: z.object({ repository: repositorySchema, jobId: z.string() }), ...errorResponses },
      },
    },
    async (request, reply) => {
      const instance = request.body.instance ?? platform.config.instances[0]!;
      // Before the token check: for an instance that does not exist, "may not use" would send the caller looking at their token.
      if (!platform.config.instances.includes(instance)) {
        throw badRequest(`unknown instance "${instance}": use one of ${platform.config.instances.join(', ')}`, 'invalid_instance');
      }
      assertInstance(request, instance);
      // Registered and enqueued together: a registration whose run could not be enqueued is taken back.
      request.auditTarget = request.body.name ?? null;
      const { repository: created, jobId } = await repos.addAndIndex({ ...request.body, instance });
      request.auditTarget = created.name;
      const branches = (await platform.repositories.list({ instances: [created.instance] })).find((r) => r.id === created.id)?.branches ?? [];
      return reply.status(201).send({ repository: present(repos, created, branches, await semanticCoverage(platform, branches)), jobId });
    },
  );

  app.get(
    '/repositories',
    {
      onRequest: app.requireScope('read'),
      schema: {
        tags: ['repositories'],
        summary: 'List repositories with their branches, status and counts',
        querystring: z.object({ instance: commaList.optional().describe('only these instances') }),
        response: { 200: z.object({ repositories: z.array(repositorySchema) }), ...errorResponses },
      },
    },
    async (request) => {
      const allowed = request.principal!.instances;
      const instances = request.query.instance ? request.query.instance.filter((i) => allowed.includes(i)) : allowed;
      const list = await platform.repositories.list({ instances });
      const coverage = await semanticCoverage(platform, list.flatMap((r) => r.branches));
      return { repositories: list.map((r) => present(repos, r, r.branches, coverage)) };
    },
  );

  app.get(
    '/repositories/:name',
    {
      onRequest: app.requireScope('read'),
      schema: {
        tags: ['repositories'],
        summary: 'One repository',
        params: z.object({ name: repoName }),
        response: { 200: repositorySchema, ...errorResponses },
      },
    },
    async (request) => {
      const repo = await visible(request, request.params.name);
      const full = (await platform.repositories.list({ instances: [repo.instance] })).find((r) => r.id === repo.id)!;
      return present(repos, full, full.branches, await semanticCoverage(platform, full.branches));
    },
  );

  app.delete(
    '/repositories/:name',
    {
      onRequest: app.requireScope('write'),
      config: { audit: { action: 'repository.remove' } },
      schema: {
        tags: ['repositories'],
        summary: 'Remove a repository and all its data from every store',
        params: z.object({ name: repoName }),
        response: { 204: z.null(), ...errorResponses },
      },
    },
    async (request, reply) => {
      await visible(request, request.params.name);
      await repos.remove(request.params.name);
      return reply.status(204).send(null);
    },
  );

  app.post(
    '/repositories/:name/reindex',
    {
      onRequest: app.requireScope('write'),
      config: { audit: { action: 'repository.reindex' } },
      schema: {
        tags: ['repositories'],
        summary: 'Queue a reindex (incremental unless full); repeated requests coalesce',
        params: z.object({ name: repoName }),
        body: z
          .object({
            branch: branchName.optional().describe('branch (default: the default branch)'),
            full: z.boolean().optional().describe('reconcile every file instead of diffing'),
          })
          .strict()
          .optional(),
        response: { 202: z.object({ jobId: z.string(), repository: z.string(), branch: z.string() }), ...errorResponses },
      },
    },
    async (request, reply) => {
      await visible(request, request.params.name);
      const { jobId, branch } = await repos.requestIndex(request.params.name, request.body ?? {});
      return reply.status(202).send({ jobId, repository: request.params.name, branch });
    },
  );
};
