import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { branchName } from '../../api/schemas/common.ts';
import { AppError, badRequest, notFound } from '../../shared/errors.ts';
import { describeJob, jobSummarySchema, visibleJob, type JobSummary } from './get-job-status.tool.ts';
import { defineTool, type ToolContext } from './tool.ts';

/** How often a waiting call looks at the job: often enough for a lively progress bar, rare enough for Redis. */
export const POLL_MS = 500;
/** How long a call with a progress token follows its job before handing back the job id to poll. */
export const WAIT_MS = 5 * 60_000;

/** A Git URL, scp-like address or filesystem path, as opposed to a repository name. */
const looksLikeSource = (s: string) => /^(https?|ssh|git|file):\/\//.test(s) || /^[\w.-]+@[\w.-]+:/.test(s) || /[/\\]/.test(s) || s.startsWith('.');

/**
 * One number that only grows over the whole run (MCP requires progress to
 * increase): files scanned, then batches done, each counted once its total is known.
 */
export function progressOf(job: JobSummary): { progress: number; total?: number; message: string } {
  const p = job.progress;
  const progress = (p.filesScanned ?? 0) + (p.batchesDone ?? 0);
  const total = (p.filesTotal ?? 0) + (p.batchesTotal ?? 0);
  return { progress, ...(total > 0 ? { total } : {}), message: describeJob(job) };
}

const FINISHED = new Set(['completed', 'failed']);

/** Follows the job, sending `notifications/progress` when it moves, until it finishes, the wait ends or the client cancels. */
async function follow(ctx: ToolContext, jobId: string, progressToken: string | number): Promise<JobSummary> {
  const deadline = Date.now() + WAIT_MS;
  let sent = -1;
  let job = await visibleJob(ctx, jobId);
  for (;;) {
    const p = progressOf(job);
    const done = FINISHED.has(job.state);
    // A finished run ends at progress = total whatever the last poll saw (a retried or up-to-date run rewrites its counts).
    const progress = done ? Math.max(p.total ?? 0, p.progress, sent + 1) : p.progress;
    const total = done ? progress : p.total;
    if (progress > sent) {
      try {
        await ctx.extra.sendNotification({
          method: 'notifications/progress',
          params: { progressToken, progress, ...(total !== undefined ? { total: Math.max(total, progress) } : {}), message: p.message },
        });
      } catch {
        return job; // the client is gone; the job runs on regardless
      }
      sent = progress;
    }
    if (done || Date.now() >= deadline || ctx.extra.signal.aborted) return job;
    try {
      await sleep(POLL_MS, undefined, { signal: ctx.extra.signal });
    } catch {
      return job;
    }
    job = await visibleJob(ctx, jobId);
  }
}

export const indexRepositoryTool = defineTool({
  name: 'index_repository',
  title: 'Index a repository',
  description:
    'Start (re)indexing a repository: pass the name of a registered repository, or a Git URL to register a new one. ' +
    'Runs are incremental and repeated requests coalesce. Returns the job id (follow it with get_job_status); ' +
    'when the call carries a progress token, it reports progress and waits (up to 5 minutes) for the run to finish. Needs write access.',
  inputSchema: z
    .object({
      repository: z.string().min(1).max(2000).describe('name of a registered repository, or a Git URL (https://…) to register and index'),
      branch: branchName.optional().describe("branch to index (default: the repository's default branch)"),
      full: z.boolean().optional().describe('reconcile every file instead of diffing from the last indexed commit (default false)'),
      instance: z.string().min(1).max(32).optional().describe('instance to register a new repository in (default: your first instance)'),
    })
    .strict(),
  outputSchema: z.object({
    repository: z.string(),
    branch: z.string(),
    registered: z.boolean().describe('true when this call registered the repository'),
    jobId: z.string(),
    finished: z.boolean().describe('true when the job completed or failed before this call returned'),
    job: jobSummarySchema,
  }),
  annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: true, openWorldHint: true },

  async handler(input, ctx) {
    const { principal } = ctx;
    if (!principal.scopes.includes('write') && !principal.scopes.includes('admin')) {
      throw new AppError(403, 'forbidden', `"${principal.name}" has read access only: indexing needs the write scope. Ask the operator for a token with write access`);
    }
    const source = input.repository.trim();
    if (!source) throw badRequest('repository must not be empty: pass a repository name or a Git URL', 'invalid_repository');
    const visible = await ctx.platform.repositories.list({ instances: ctx.instances });
    let repo =
      visible.find((r) => r.name === source) ??
      (looksLikeSource(source) ? visible.find((r) => r.sourceUrl === source || (r.localPath !== null && r.localPath === path.resolve(source))) : undefined);
    let registered = false;
    let run: { jobId: string; branch: string } | undefined;
    if (!repo) {
      if (!looksLikeSource(source)) {
        throw notFound(`no repository named "${source}"; to register a new one, pass its Git URL (https://…)`, 'repository_not_found');
      }
      const instance = input.instance ?? ctx.instances[0];
      if (!instance || !ctx.instances.includes(instance)) {
        throw badRequest(`you cannot register repositories in instance "${instance ?? ''}": yours are ${ctx.instances.join(', ') || 'none'}`, 'invalid_instance');
      }
      // Registered and enqueued together: a registration whose run could not be enqueued is taken back.
      const added = await ctx.repos.addAndIndex({ source, instance, ...(input.branch ? { branch: input.branch } : {}) });
      repo = { ...added.repository, branches: [] };
      run = added;
      registered = true;
    }

    run ??= await ctx.repos.requestIndex(repo.name, { ...(input.branch ? { branch: input.branch } : {}), full: input.full ?? false });
    const progressToken = ctx.extra._meta?.progressToken;
    const job = progressToken === undefined ? await visibleJob(ctx, run.jobId) : await follow(ctx, run.jobId, progressToken);
    const finished = FINISHED.has(job.state);
    if (job.state === 'failed') {
      throw new AppError(422, 'index_failed', `indexing ${repo.name} (${run.branch}) failed: ${job.failedReason ?? 'no reason recorded'} (job ${job.id})`);
    }
    const next = finished
      ? ctx.platform.semantic && job.state === 'completed'
        ? '\nSearchable now; the local model fills in its vectors in the background (list_repositories shows how far), and search improves as it does.'
        : ''
      : `\nFollow it with get_job_status (job_id: "${job.id}").`;
    return {
      text: `${registered ? `Registered ${repo.name}. ` : ''}Indexing ${repo.name} (${run.branch}): ${describeJob(job)}${next}`,
      data: { repository: repo.name, branch: run.branch, registered, jobId: run.jobId, finished, job },
    };
  },
});
