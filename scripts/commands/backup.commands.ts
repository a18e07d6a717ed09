import cliProgress from 'cli-progress';
import type { Command } from 'commander';
import { createBackupService, type BackupProgress, type CheckResult } from '../../shared/backup/backup.service.ts';
import { AppError } from '../../shared/errors.ts';
import type { Platform } from '../../shared/platform.ts';
import type { AuditResult } from '../../shared/stores/audit.repository.ts';
import { sleep } from '../stack/process.ts';
import { boundedWait, cliLogger, giveUpOption, printJson, printTable, wholeNumber, withPlatform } from './cli-support.ts';

const size = (bytes: number) =>
  bytes >= 2 ** 30 ? `${(bytes / 2 ** 30).toFixed(1)} GB` : bytes >= 2 ** 20 ? `${(bytes / 2 ** 20).toFixed(1)} MB` : `${Math.max(1, Math.round(bytes / 1024))} KB`;

/** One progress line on a terminal (phase, step, done/total); a line per phase otherwise. */
function progressPrinter() {
  const tty = Boolean(process.stderr.isTTY);
  const bar = new cliProgress.SingleBar(
    { format: ' {phase} |{bar}| {value}/{total} {step}', hideCursor: true, clearOnComplete: true, stream: process.stderr },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  let last = '';
  return {
    update(p: Partial<BackupProgress>) {
      const phase = (p.phase ?? 'working').padEnd(12);
      const step = p.step ?? '';
      if (tty) {
        if (!started) bar.start(Math.max(p.total ?? 1, 1), p.done ?? 0, { phase, step });
        started = true;
        bar.setTotal(Math.max(p.total ?? 1, 1));
        bar.update(p.done ?? 0, { phase, step });
      } else if (p.phase !== 'checking' && `${p.phase} ${step}` !== last) {
        // Not 'checking': a refused set then says so in its one line, nothing before it.
        last = `${p.phase} ${step}`;
        console.error(`${p.phase}${step ? ` ${step}` : ''}…`);
      }
    },
    stop() {
      if (started) bar.stop();
      started = false;
    },
  };
}

/** Waits for a maintenance job, showing its progress; Ctrl-C stops the waiting, not the job. */
async function waitForMaintenanceJob(platform: Platform, jobId: string, giveUpAfter: number): Promise<{ ok: boolean; result: unknown; failedReason?: string }> {
  const queue = platform.queues.queues.maintenance;
  // Bounded: an unreachable Redis or no worker for --give-up-after ends the wait with one line (cli-support.ts).
  const wait = boundedWait(platform, { giveUpAfterMs: giveUpAfter * 1000, jobId, queue: 'maintenance' });
  if ((await wait.poll('Redis', () => queue.getWorkersCount())) === 0) {
    console.error(`note: no worker is running on the maintenance queue; start the platform with \`npm start\` (this waits ${giveUpAfter} s for one)`);
  }
  const printer = progressPrinter();
  try {
    for (;;) {
      const job = await wait.poll('Redis', () => queue.getJob(jobId));
      if (!job) throw new AppError(404, 'job_not_found', `job ${jobId} is gone (removed from the queue)`);
      const state = await wait.poll('Redis', () => job.getState());
      wait.workers(await wait.poll('Redis', () => queue.getWorkersCount()), state === 'active');
      if (state === 'completed' || state === 'failed') {
        printer.stop();
        const done = (await wait.poll('Redis', () => queue.getJob(jobId))) ?? job;
        return state === 'completed' ? { ok: true, result: done.returnvalue } : { ok: false, result: null, failedReason: done.failedReason };
      }
      printer.update(state === 'active' ? ((job.progress ?? {}) as Partial<BackupProgress>) : { phase: 'queued' as never });
      await sleep(300);
    }
  } finally {
    printer.stop();
    wait.close();
  }
}

function printCheck(result: CheckResult): void {
  const width = Math.max(...result.counts.map((c) => c.part.length), 4);
  for (const c of result.counts) console.log(`  ${c.part.padEnd(width)}  ${String(c.found).padStart(8)}${c.found === c.expected ? '' : `  (expected ${c.expected})`}`);
  for (const p of result.probes) console.log(`  probe ${p.repository}@${p.branch} ${p.symbol}: search ${p.search ? 'ok' : 'MISSING'}, graph ${p.graph ? 'ok' : 'MISSING'}`);
}

export function registerBackupCommands(program: Command): void {
  const backup = program.command('backup').description('back up, verify, restore and prune sets of every store (Postgres, Chroma, Neo4j)');

  backup
    .command('create')
    .description('queue a backup set on the maintenance queue (the workers take it); written to BACKUP_DIR')
    .option('--instance <instance>', 'back up one instance (default: every instance, with tokens and the audit trail)')
    .option('--wait', 'wait for the set to be written, showing progress')
    .addOption(giveUpOption())
    .action(async (opts: { instance?: string; wait?: boolean; giveUpAfter: number }) => {
      const ok = await withPlatform(async (platform) => {
        if (opts.instance !== undefined && !platform.config.instances.includes(opts.instance)) {
          throw new AppError(400, 'unknown_instance', `unknown instance "${opts.instance}" (configured: ${platform.config.instances.join(', ')})`);
        }
        const job = await platform.queues.enqueue('backup-create', { ...(opts.instance ? { instance: opts.instance } : {}), actor: 'cli' });
        if (!opts.wait) {
          console.log(`queued backup job ${job.id} (follow it with \`pk-mcp jobs --id ${job.id}\`, or pass --wait)`);
          return true;
        }
        const outcome = await waitForMaintenanceJob(platform, job.id, opts.giveUpAfter);
        if (!outcome.ok) {
          console.error(`error: the backup failed: ${outcome.failedReason}`);
          return false;
        }
        const r = outcome.result as { file: string; durationMs: number; parts: Array<{ name: string; count: number; bytes: number }> };
        console.log(`wrote ${r.file} in ${(r.durationMs / 1000).toFixed(1)} s (${r.parts.length} parts) to ${platform.config.backup.dir}`);
        return true;
      });
      if (!ok) process.exitCode = 1;
    });

  backup
    .command('list')
    .description('list backup sets, newest first: time, size, counts, and whether a verification passed')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }) => {
      await withPlatform(async (platform) => {
        const sets = createBackupService(platform, cliLogger()).list();
        if (opts.json) return printJson(sets);
        if (sets.length === 0) return console.log(`no backup sets in ${platform.config.backup.dir} yet: take one with \`pk-mcp backup create --wait\``);
        const header = ['FILE', 'CREATED', 'SCOPE', 'SIZE', 'ROWS', 'VECTORS', 'GRAPH', 'VERIFIED'];
        const rows = sets.map((s) => [
          s.file,
          s.createdAt.replace(/\.\d{3}Z$/, 'Z'),
          s.instance ?? 'all',
          size(s.bytes),
          String(s.counts.postgresRows),
          String(s.counts.vectors),
          `${s.counts.graphNodes}/${s.counts.graphRelationships}`,
          s.verification ? `${s.verification.ok ? 'yes' : 'FAILED'} ${s.verification.at.slice(0, 10)}` : 'no',
        ]);
        printTable(header, rows);
      });
    });

  backup
    .command('verify <file>')
    .description('restore a set into a scratch namespace, compare every count and probe, then drop it (runs here)')
    .action(async (file: string) => {
      const ok = await withPlatform(async (platform) => {
        const backups = createBackupService(platform, cliLogger());
        const printer = progressPrinter();
        const result = await platform.audit.timed({ actor: 'cli', action: 'backup.verify', target: file }, () =>
          backups.verify(file, { actor: 'cli', onProgress: (p) => printer.update(p) }).finally(() => printer.stop()),
        );
        printCheck(result);
        if (result.ok) console.log(`${result.file} verified in ${(result.durationMs / 1000).toFixed(1)} s`);
        else console.error(`error: ${result.file} did not verify:\n  ${result.problems.join('\n  ')}`);
        return result.ok;
      });
      if (!ok) process.exitCode = 1;
    });

  backup
    .command('restore <file>')
    .description('restore a set (every checksum is checked first; nothing changes if one fails), then verify counts and probes (runs here)')
    .option('--instance <instance>', 'restore one instance only (from a set of every instance)')
    .option('--yes', 'replace the repositories (and tokens) that are there now; without it a restore over existing data is refused')
    .action(async (file: string, opts: { instance?: string; yes?: boolean }) => {
      const ok = await withPlatform(async (platform) => {
        const backups = createBackupService(platform, cliLogger());
        const printer = progressPrinter();
        const result = await platform.audit.timed({ actor: 'cli', action: 'backup.restore', target: file, details: { instance: opts.instance ?? null, replace: !!opts.yes } }, () =>
          backups
            .restore(file, { ...(opts.instance ? { instance: opts.instance } : {}), replace: !!opts.yes, actor: 'cli', onProgress: (p) => printer.update(p) })
            .finally(() => printer.stop()),
        );
        printCheck(result);
        if (result.problems.length > 0) {
          console.error(`error: restored, but the check found problems:\n  ${result.problems.join('\n  ')}`);
          return false;
        }
        console.log(`restored ${file} (${result.manifest.instance ?? 'every instance'}, taken ${result.manifest.createdAt}) in ${(result.durationMs / 1000).toFixed(1)} s`);
        return true;
      });
      if (!ok) process.exitCode = 1;
    });

  backup
    .command('prune')
    .description('remove the sets the retention policy does not keep (BACKUP_KEEP_DAILY, BACKUP_KEEP_WEEKLY; never the newest verified set)')
    .action(async () => {
      await withPlatform(async (platform) => {
        const backups = createBackupService(platform, cliLogger());
        const r = await platform.audit.timed({ actor: 'cli', action: 'backup.prune', target: backups.dir }, async () => backups.prune(), (x) => ({ kept: x.kept.length, removed: x.removed }));
        for (const f of r.removed) console.log(`removed ${f}`);
        console.log(`kept ${r.kept.length} set(s), removed ${r.removed.length}`);
      });
    });

  program
    .command('audit')
    .description('read the audit trail: admin actions, maintenance jobs and refused requests, newest first')
    .option('--since <time>', 'from this time on (ISO 8601, e.g. 2026-12-01 or 2026-12-01T08:00:00Z)')
    .option('--principal <name>', "who acted: a token's name, oidc:<subject>, 'anonymous', 'cli', or 'schedule:<name>'")
    .option('--action <action>', 'an action (backup.create) or a family (backup, auth)')
    .option('--result <result>', 'only ok, failed or refused rows')
    .option('--limit <n>', 'at most this many rows (default 100)', wholeNumber('--limit', 1, 10000), 100)
    .option('--json', 'print JSON')
    .action(async (opts: { since?: string; principal?: string; action?: string; result?: string; limit: number; json?: boolean }) => {
      if (opts.result !== undefined && !['ok', 'failed', 'refused'].includes(opts.result)) {
        throw new AppError(400, 'invalid_option', `--result must be ok, failed or refused, not "${opts.result}"`);
      }
      let since: Date | undefined;
      if (opts.since !== undefined) {
        since = new Date(opts.since);
        if (Number.isNaN(since.getTime())) throw new AppError(400, 'invalid_option', `--since must be a date or time (ISO 8601), not "${opts.since}"`);
      }
      await withPlatform(async (platform) => {
        const entries = await platform.audit.list({ ...(since ? { since } : {}), ...(opts.principal ? { actor: opts.principal } : {}), ...(opts.action ? { action: opts.action } : {}), ...(opts.result ? { result: opts.result as AuditResult } : {}), limit: opts.limit });
        if (opts.json) return printJson(entries);
        if (entries.length === 0) return console.log('no audit entries match');
        for (const e of entries) {
          const took = e.durationMs === null ? '' : ` ${(e.durationMs / 1000).toFixed(1)}s`;
          const detail = e.result === 'ok' ? '' : ` — ${String(e.details.reason ?? e.details.error ?? '')}`;
          const from = e.source ? `  from ${e.source}` : '';
          console.log(`${e.at.toISOString().replace(/\.\d{3}Z$/, 'Z')}  ${e.actor}  ${e.action}${e.target ? ` ${e.target}` : ''}  ${e.result}${took}${from}${detail}`);
        }
      });
    });
}
