import type { Command } from 'commander';
import type { Platform } from '../../shared/platform.ts';
import { createLogger } from '../../shared/logger.ts';
import { createSecretRotationService, type RotationResult } from '../../shared/secrets/secret-rotation.service.ts';
import { sleep } from '../stack/process.ts';
import { boundedWait, giveUpOption, printJson, withPlatform } from './cli-support.ts';

const quietLogger = () => createLogger({ logLevel: process.env.LOG_LEVEL ?? 'warn', logPretty: false }, { destination: 2 });

function printResult(result: RotationResult): void {
  for (const r of result.rotated) {
    const grace = r.previousValidUntil ? `; the old value works until ${r.previousValidUntil}` : '; the old value no longer works';
    const processes = r.processes !== undefined ? `, confirmed by ${r.processes} process${r.processes === 1 ? '' : 'es'}` : '';
    console.log(`rotated  ${r.name} (fingerprint ${r.fingerprint}, in ${r.file}${processes}${grace})`);
    for (const note of r.notes ?? []) console.log(`         note: ${note}`);
  }
  for (const s of result.skipped) console.log(`skipped  ${s.name}: ${s.reason}`);
  for (const f of result.failed) console.log(`FAILED   ${f.name}: ${f.error}${f.rolledBack ? ' (rolled back: the old value still works)' : ''}`);
}

/** Waits for the rotation job; true when it completed. */
async function waitForRotation(platform: Platform, jobId: string, json: boolean, giveUpAfter: number): Promise<boolean> {
  const queue = platform.queues.queues.maintenance;
  // Bounded: an unreachable Redis or no worker for --give-up-after ends the wait with one line (cli-support.ts).
  const wait = boundedWait(platform, { giveUpAfterMs: giveUpAfter * 1000, jobId, queue: 'maintenance' });
  try {
    return await followRotation(platform, jobId, json, wait);
  } finally {
    wait.close();
  }
}

async function followRotation(platform: Platform, jobId: string, json: boolean, wait: ReturnType<typeof boundedWait>): Promise<boolean> {
  const queue = platform.queues.queues.maintenance;
  if ((await wait.poll('Redis', () => queue.getWorkersCount())) === 0) {
    console.error(`note: no worker is running on the maintenance queue; start the platform with \`npm start\` (this waits ${Math.round(wait.giveUpAfterMs / 1000)} s for one)`);
  }
  let last = '';
  for (;;) {
    const job = await wait.poll('Redis', () => queue.getJob(jobId));
    if (!job) throw new Error(`job ${jobId} is gone`);
    const state = await wait.poll('Redis', () => job.getState());
    wait.workers(await wait.poll('Redis', () => queue.getWorkersCount()), state === 'active');
    const progress = job.progress as { secret?: string; step?: string } | number;
    const line = typeof progress === 'object' && progress.secret ? `${progress.secret}: ${progress.step}` : state;
    if (!json && line !== last && state !== 'completed' && state !== 'failed') console.error(line);
    last = line;
    if (state === 'completed' || state === 'failed') {
      const done = (await wait.poll('Redis', () => queue.getJob(jobId))) ?? job;
      if (state === 'failed') {
        if (json) printJson({ jobId, state, error: done.failedReason });
        else console.error(`error: ${done.failedReason}`);
        return false;
      }
      const result = done.returnvalue as RotationResult;
      if (json) printJson({ jobId, state, ...result });
      else printResult(result);
      return true;
    }
    await sleep(300);
  }
}

export function registerSecretsCommands(program: Command): void {
  const secrets = program.command('secrets').description('list and rotate the secrets the platform manages (store passwords, webhook secrets, tokens marked for rotation)');

  secrets
    .command('list')
    .description('list the secrets the platform knows: which it rotates, and why not the others (never a value)')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }) => {
      await withPlatform(async (platform) => {
        const entries = await createSecretRotationService({ platform, logger: quietLogger() }).catalog();
        if (opts.json) return printJson(entries);
        for (const e of entries) {
          const where = e.file ? ` (${e.file})` : '';
          const due = e.dueAt ? `; due ${e.dueAt}` : '';
          console.log(e.managed ? `managed      ${e.name}${where}${due}` : `not managed  ${e.name}: ${e.reason}`);
        }
      });
    });

  secrets
    .command('rotate')
    .description("queue the rotation of a managed secret, or of every managed secret ('all': tokens only once due), on the maintenance queue")
    .argument('<name>', "database-password, neo4j-password, redis-password, webhook-secret, repo-webhook-<repository>, token-<name>, or all")
    .option('--wait', 'wait for the rotation and print what was rotated, skipped (and why) or rolled back; exit 1 when one failed')
    .option('--json', 'with --wait: print the result as JSON')
    .addOption(giveUpOption())
    .action(async (name: string, opts: { wait?: boolean; json?: boolean; giveUpAfter: number }) => {
      const ok = await withPlatform(async (platform) => {
        // The name is checked here, so a typo is one line now rather than a failed job later.
        await createSecretRotationService({ platform, logger: quietLogger() }).resolve(name);
        const { id } = await platform.queues.enqueue('secret-rotate', { name, actor: 'cli' });
        if (!opts.wait) {
          console.log(`queued rotation of ${name} (job ${id}); follow it with \`pk-mcp jobs\` or rerun with --wait`);
          return true;
        }
        return waitForRotation(platform, id, opts.json ?? false, opts.giveUpAfter);
      });
      if (!ok) process.exitCode = 1;
    });
}
