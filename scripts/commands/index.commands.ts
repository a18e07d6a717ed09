import { Option, type Command } from 'commander';
import type { IndexProgress } from '../../shared/indexing/index-run.ts';
import type { SemanticProgress } from '../../workers/jobs/semantic-embed.job.ts';
import type { Platform } from '../../shared/platform.ts';
import { boundedWait, giveUpOption, list, printJson, wholeNumber, withPlatform } from './cli-support.ts';
import { QUEUE_NAMES } from '../../shared/queue/registry.ts';
import { FILE_KINDS, type FileKind } from '../../shared/search/file-kind.ts';
import { AppError } from '../../shared/errors.ts';
import { describeCoverage, semanticCoverage } from '../../shared/semantic/coverage.ts';

/** `--kind code,test`: each a known file kind. */
function kindList(value: string, previous: FileKind[] = []): FileKind[] {
  const kinds = value.split(',').map((k) => k.trim()).filter(Boolean);
  const unknown = kinds.find((k) => !(FILE_KINDS as readonly string[]).includes(k));
  if (unknown !== undefined || kinds.length === 0) {
    throw new AppError(400, 'invalid_option', `--kind takes ${FILE_KINDS.join(', ')} (comma-separated), not "${unknown ?? value}"`);
  }
  return [...previous, ...(kinds as FileKind[])];
}
import { sleep } from '../stack/process.ts';

// Loaded by the commands that use them: `repo list` or `search` must not load git, the indexer or BullMQ.
const repositoryService = async (platform: Platform) => (await import('../../shared/indexing/repository.service.ts')).createRepositoryService(platform);
const progressBars = async () => (await import('cli-progress')).default;

/** Follows an index job until it finishes, with a progress bar on a TTY and plain lines otherwise. */
/**
 * After a run publishes, the local model fills in its vectors in the background: `--wait` waits for that
 * too (search already works meanwhile, ranked by full text and fast vectors), with a progress bar. It stops
 * waiting, never the work, on Ctrl-C or when nothing can make progress (no worker, a failed job).
 */
async function waitForModel(platform: Platform, ref: { repositoryId: number; branch: string }, wait: Waiter): Promise<void> {
  if (!platform.semantic) return;
  const queue = platform.queues.queues.semantic;
  const coverageOf = () => wait.poll('Postgres', async () => (await semanticCoverage(platform, [ref]))(ref)!);
  let c = await coverageOf();
  if (c.complete) return;
  if ((await wait.poll('Redis', () => queue.getWorkersCount())) === 0) {
    console.error(`searchable now; the local model has embedded ${c.embedded} of ${c.total} chunks and no worker is running to embed the rest (start the platform with \`npm start\`)`);
    return;
  }
  console.error('searchable now; the local model is embedding it in the background (Ctrl-C stops waiting, not the work)');
  const tty = Boolean(process.stderr.isTTY);
  const cliProgress = await progressBars();
  const bar = new cliProgress.SingleBar(
    { format: ' model     |{bar}| {value}/{total} chunks', hideCursor: true, clearOnComplete: false, stream: process.stderr },
    cliProgress.Presets.shades_classic,
  );
  if (tty) bar.start(Math.max(c.total, 1), c.embedded + c.failed);
  let lastLine = Date.now();
  try {
    while (!c.complete) {
      await sleep(1000);
      c = await coverageOf();
      if (tty) bar.update(c.embedded + c.failed);
      else if (Date.now() - lastLine > 15_000) {
        lastLine = Date.now();
        console.error(`model ${c.embedded}/${c.total} chunks`);
      }
      const [failedJobs, active, waiting, workers] = await wait.poll('Redis', () =>
        Promise.all([queue.getFailed(0, 20), queue.getActiveCount(), queue.getWaitingCount(), queue.getWorkersCount()]),
      );
      wait.workers(workers, active > 0);
      const failed = failedJobs.find((j) => j.data?.repositoryId === ref.repositoryId && j.data?.branch === ref.branch && j.finishedOn && j.finishedOn > Date.now() - 60_000);
      if (failed && !c.complete && active === 0 && waiting === 0) {
        if (tty) bar.stop();
        console.error(`the local model stopped at ${c.embedded} of ${c.total} chunks: ${failed.failedReason}`);
        return;
      }
    }
  } finally {
    if (tty && bar.isActive) bar.stop();
  }
  console.log(`model vectors: ${c.embedded} of ${c.total} chunks${c.failed ? ` (${c.failed} the model failed on, skipped)` : ''}`);
}

type Waiter = ReturnType<typeof boundedWait>;

async function waitForIndex(platform: Platform, jobId: string, options: { model: boolean; giveUpAfter: number }): Promise<boolean> {
  const wait = boundedWait(platform, { giveUpAfterMs: options.giveUpAfter * 1000, jobId, queue: 'index' });
  try {
    return await followIndex(platform, jobId, { model: options.model, wait });
  } finally {
    wait.close();
  }
}

async function followIndex(platform: Platform, jobId: string, options: { model: boolean; wait: Waiter }): Promise<boolean> {
  const { wait } = options;
  const queue = platform.queues.queues.index;
  if ((await wait.poll('Redis', () => queue.getWorkersCount())) === 0) {
    console.error(`note: no worker is running on this queue; start the platform with \`npm start\` (this waits ${Math.round(options.wait.giveUpAfterMs / 1000)} s for one)`);
  }
  const tty = Boolean(process.stderr.isTTY);
  const cliProgress = await progressBars();
  const bar = new cliProgress.SingleBar(
    { format: ' {phase} |{bar}| {value}/{total} {unit}', hideCursor: true, clearOnComplete: false, stream: process.stderr, noTTYOutput: false },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  let lastPhase = '';
  try {
    for (;;) {
      const job = await wait.poll('Redis', () => queue.getJob(jobId));
      if (!job) throw new Error(`job ${jobId} is gone (removed from the queue)`);
      const state = await wait.poll('Redis', () => job.getState());
      wait.workers(await wait.poll('Redis', () => queue.getWorkersCount()), state === 'active' || state === 'waiting-children');
      const p = (typeof job.progress === 'object' ? job.progress : {}) as Partial<IndexProgress>;
      let value = p.filesScanned ?? 0;
      let total = p.filesTotal ?? 0;
      let unit = 'files';
      if (state === 'waiting-children' || p.phase === 'embedding') {
        const counts = await wait.poll('Redis', () => job.getDependenciesCount({ processed: true, unprocessed: true, ignored: true, failed: true }));
        total = p.batchesTotal ?? (counts.processed ?? 0) + (counts.unprocessed ?? 0);
        value = (counts.processed ?? 0) + (counts.ignored ?? 0) + (counts.failed ?? 0);
        unit = 'batches embedded';
      }
      const phase = state === 'waiting' || state === 'prioritized' || state === 'delayed' ? 'queued' : (p.phase ?? state);
      if (tty) {
        if (!started) bar.start(Math.max(total, 1), value, { phase: phase.padEnd(10), unit });
        started = true;
        bar.setTotal(Math.max(total, 1));
        bar.update(value, { phase: phase.padEnd(10), unit });
      } else if (phase !== lastPhase) {
        console.error(`${phase}…`);
      }
      lastPhase = phase;
      // The job was read before its state: read it again, or a job that has just finished
      // still lacks its return value or failure reason.
      const done = state === 'completed' || state === 'failed' ? ((await wait.poll('Redis', () => queue.getJob(jobId))) ?? job) : job;
      if (state === 'completed') {
        if (started) bar.stop();
        const r = done.returnvalue as { repositoryId: number; branch: string; commit: string; upToDate: boolean; chunks?: number; filesChanged?: number; secretsRedacted?: Record<string, number> };
        const secrets = Object.entries(r.secretsRedacted ?? {});
        const redacted = secrets.length ? `; ${secrets.reduce((n, [, c]) => n + c, 0)} secret(s) redacted (${secrets.map(([rule, c]) => `${rule} ${c}`).join(', ')})` : '';
        console.log(
          r.upToDate
            ? `up to date at ${r.commit.slice(0, 12)}`
            : `indexed ${r.commit.slice(0, 12)}: ${r.filesChanged ?? 0} file(s) changed, ${r.chunks ?? 0} chunk(s)${redacted}`,
        );
        if (options.model) await waitForModel(platform, { repositoryId: r.repositoryId, branch: r.branch }, wait);
        return true;
      }
      if (state === 'failed') {
        if (started) bar.stop();
        console.error(`error: indexing failed: ${done.failedReason}`);
        return false;
      }
      await sleep(300);
    }
  } finally {
    if (started) bar.stop();
  }
}

export function registerIndexCommands(program: Command): void {
  const repo = program.command('repo').description('register, list and remove repositories');

  repo
    .command('add')
    .description('register a Git repository (https URL or local path) and index it')
    .argument('<source>', 'Git URL (https://…) or path of a local Git repository')
    .option('--branch <branch>', "branch to index (default: the remote's default branch)")
    .option('--name <name>', 'name to refer to it by (default: from the URL or folder)')
    .option('--instance <instance>', 'instance it belongs to (one of INSTANCES; default: the first of them)')
    .option('--include <globs>', 'only index paths matching these globs (comma-separated, repeatable)', list)
    .option('--exclude <globs>', 'never index paths matching these globs (comma-separated, repeatable)', list)
    .option('--no-index', 'register only; index later with `pk-mcp index`')
    .option('--wait', 'wait for the first index and show its progress, then for the local model to embed it')
    .option('--no-model-wait', 'with --wait: return once it is searchable, without waiting for the local model')
    .addOption(giveUpOption())
    .action(async (source: string, opts: { branch?: string; name?: string; instance?: string; include?: string[]; exclude?: string[]; index: boolean; wait?: boolean; modelWait: boolean; giveUpAfter: number }) => {
      const ok = await withPlatform(async (platform) => {
        const service = await repositoryService(platform);
        const input = { source, name: opts.name, branch: opts.branch, instance: opts.instance, include: opts.include, exclude: opts.exclude };
        if (!opts.index) {
          const created = await service.add(input);
          console.log(`added ${created.name} (${service.describeSource(created)}, branch ${created.defaultBranch})`);
          return true;
        }
        // Registered and enqueued together: a registration whose run could not be enqueued is taken back.
        const { repository: created, jobId } = await service.addAndIndex(input);
        console.log(`added ${created.name} (${service.describeSource(created)}, branch ${created.defaultBranch})`);
        console.log(`indexing: job ${jobId}`);
        return opts.wait ? waitForIndex(platform, jobId, { model: opts.modelWait, giveUpAfter: opts.giveUpAfter }) : true;
      });
      if (!ok) process.exitCode = 1;
    });

  repo
    .command('list')
    .description("list repositories with their branches, indexed commits, counts and the local model's coverage")
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }) => {
      await withPlatform(async (platform) => {
        const list = await platform.repositories.list();
        const coverage = await semanticCoverage(platform, list.flatMap((r) => r.branches));
        const repos = list.map((r) => ({ ...r, branches: r.branches.map((b) => ({ ...b, semantic: coverage(b) })) }));
        if (opts.json) return printJson(repos);
        if (repos.length === 0) return console.log('no repositories yet: add one with `pk-mcp repo add <url|path>`');
        for (const r of repos) {
          for (const b of r.branches) {
            console.log(
              [r.name.padEnd(24), r.instance.padEnd(8), b.branch.padEnd(16), b.status.padEnd(9), (b.indexedCommit?.slice(0, 12) ?? '-').padEnd(13), `${b.fileCount} files`, `${b.chunkCount} chunks`, b.indexedCommit ? describeCoverage(b.semantic) : '', b.lastError ? ` last error: ${b.lastError}` : ''].join(' '),
            );
          }
        }
      }, ['postgres']);
    });

  repo
    .command('remove')
    .description('remove a repository and all its data from every store')
    .argument('<name>', 'repository name')
    .action(async (name: string) => {
      await withPlatform(async (platform) => {
        await (await repositoryService(platform)).remove(name);
        console.log(`removed ${name}`);
      });
    });

  program
    .command('index')
    .description('reindex a repository (incremental unless --full)')
    .argument('<name>', 'repository name')
    .option('--branch <branch>', 'branch (default: the repository default branch)')
    .option('--full', 'reconcile every file instead of diffing from the last indexed commit')
    .option('--wait', 'wait until it is searchable, with a progress bar, then for the local model to embed it')
    .option('--no-model-wait', 'with --wait: return once it is searchable, without waiting for the local model')
    .addOption(giveUpOption())
    .action(async (name: string, opts: { branch?: string; full?: boolean; wait?: boolean; modelWait: boolean; giveUpAfter: number }) => {
      const ok = await withPlatform(async (platform) => {
        const { jobId, branch } = await (await repositoryService(platform)).requestIndex(name, opts);
        console.log(`indexing ${name}@${branch}: job ${jobId}`);
        return opts.wait ? waitForIndex(platform, jobId, { model: opts.modelWait, giveUpAfter: opts.giveUpAfter }) : true;
      }, ['redis']);
      if (!ok) process.exitCode = 1;
    });

  program
    .command('search')
    .description('hybrid search over indexed code (local model and fast vectors + full text), implementation first, one hit per file')
    .argument('<query>', 'what to look for, in words or identifiers')
    .option('--repo <names>', 'only these repositories (comma-separated, repeatable)', list)
    .option('--lang <language>', 'only this language (e.g. typescript, python)')
    .option('--path <glob>', 'only paths matching this glob (e.g. "src/**/*.ts")')
    .addOption(new Option('--limit <k>', 'number of results (1-100)').default(10).argParser(wholeNumber('--limit', 1, 100)))
    .addOption(new Option('--kind <kinds>', `only files of these kinds (comma-separated: ${FILE_KINDS.join(', ')})`).argParser(kindList))
    .addOption(new Option('--per-file <n>', 'results of one file at most (1-100)').default(1).argParser(wholeNumber('--per-file', 1, 100)))
    .option('--json', 'print JSON (each hit explains its rank)')
    .action(async (query: string, opts: { repo?: string[]; lang?: string; path?: string; limit: number; kind?: FileKind[]; perFile: number; json?: boolean }) => {
      await withPlatform(async (platform) => {
        const { createSearchService } = await import('../../shared/search/hybrid-search.ts');
        const { hits, tookMs, warnings } = await createSearchService(platform).search({
          query,
          repositories: opts.repo,
          language: opts.lang,
          pathGlob: opts.path,
          limit: opts.limit,
          kinds: opts.kind,
          perFile: opts.perFile,
        });
        if (opts.json) return printJson({ hits, tookMs, warnings });
        for (const w of warnings) console.error(`warning: ${w.message}`);
        if (hits.length === 0) return console.log('no results');
        for (const h of hits) {
          const kind = h.fileKind === 'code' ? '' : `, ${h.fileKind}`;
          console.log(`${h.repository}:${h.path}:${h.startLine}-${h.endLine}${h.symbol ? `  ${h.symbol}` : ''}  (${h.score.toFixed(4)}, ${h.matchedBy.join('+')}${kind}, @${h.commit.slice(0, 12)})`);
          console.log(h.snippet.split('\n').slice(0, 6).map((l) => `    ${l}`).join('\n'));
        }
        console.error(`${hits.length} result(s) in ${tookMs} ms`);
      }, ['chroma', 'neo4j', 'embeddings']);
    });

  program
    .command('jobs')
    .description('recent jobs of every queue with their state and progress')
    .option('--failed', 'only failed jobs, with their reasons')
    // Each listed job costs a Redis round trip for its state: bound it.
    .addOption(new Option('--limit <n>', 'jobs per queue (1-1000)').default(20).argParser(wholeNumber('--limit', 1, 1000)))
    .option('--json', 'print JSON')
    .action(async (opts: { failed?: boolean; limit: number; json?: boolean }) => {
      await withPlatform(async (platform) => {
        const states = opts.failed ? (['failed'] as const) : (['active', 'waiting', 'waiting-children', 'delayed', 'failed', 'completed'] as const);
        const rows = [];
        for (const name of QUEUE_NAMES) {
          // getJobs applies the range to each state on its own: cut the union down to --limit.
          const jobs = (await platform.queues.queues[name].getJobs([...states], 0, opts.limit - 1, false)).slice(0, opts.limit);
          for (const job of jobs) {
            rows.push({
              queue: name,
              id: job.id,
              name: job.name,
              state: await job.getState(),
              progress: job.progress,
              attempts: job.attemptsMade,
              failedReason: job.failedReason || undefined,
              createdAt: new Date(job.timestamp).toISOString(),
            });
          }
        }
        if (opts.json) return printJson(rows);
        if (rows.length === 0) return console.log(opts.failed ? 'no failed jobs' : 'no jobs');
        for (const r of rows) {
          const p = r.progress as (Partial<IndexProgress> & Partial<SemanticProgress>) | number;
          const progress =
            typeof p !== 'object' || !p.phase
              ? ''
              : r.name === 'semantic-embed'
                ? `model ${p.embedded ?? 0}/${p.total ?? 0} chunks`
                : `${p.phase} ${p.filesScanned ?? 0}/${p.filesTotal ?? 0} files ${p.chunks ?? 0} chunks`;
          console.log(`${r.queue.padEnd(8)} ${String(r.id).padEnd(28)} ${r.name.padEnd(18)} ${r.state.padEnd(16)} ${progress}${r.failedReason ? ` ${r.failedReason}` : ''}`);
        }
      }, ['redis']);
    });
}
