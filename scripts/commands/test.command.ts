import { spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { PROJECT_ROOT } from '../project.ts';
import { displayUrl, stackDown, stackUp } from '../stack/stack.ts';
import type { StoreName } from '../../shared/stores/store.ts';

interface VitestJson {
  numPassedTests: number;
  numFailedTests: number;
  numPendingTests: number;
  numTodoTests: number;
  numFailedTestSuites: number;
}

export function registerTestCommand(program: Command): void {
  program
    .command('test')
    .description('start the local stack when needed, run every test against the real stores, print "N passed, N failed"')
    .option('--keep-stack', 'leave stores this run started running afterwards')
    .argument('[filters...]', 'only test files whose path contains one of these')
    .allowUnknownOption()
    .action(async (filters: string[], opts: { keepStack?: boolean }) => {
      const reports = await stackUp({ projectRoot: PROJECT_ROOT });
      for (const r of reports) console.log(`  ${r.name.padEnd(9)} ${r.state.padEnd(8)} ${displayUrl(r.url)}`);
      const started: StoreName[] = reports.filter((r) => r.state === 'started').map((r) => r.name);

      const resultsFile = path.join(PROJECT_ROOT, '.data', 'test-results.json');
      rmSync(resultsFile, { force: true });
      const vitest = path.join(PROJECT_ROOT, 'node_modules', 'vitest', 'vitest.mjs');
      const code = await new Promise<number>((resolve) => {
        const child = spawn(
          process.execPath,
          [vitest, 'run', '--reporter=default', '--reporter=json', `--outputFile.json=${resultsFile}`, ...filters],
          // The local model tier is off unless a test turns it on (tests/integration/semantic-*.test.ts): each process
          // that loads the model takes ~0.5 GB and seconds per file, and tests of other parts must not wait for it.
          { cwd: PROJECT_ROOT, stdio: 'inherit', env: { ...process.env, NODE_ENV: 'test', SEMANTIC_MODEL: process.env.SEMANTIC_MODEL ?? 'none' } },
        );
        child.on('exit', (c, signal) => resolve(c ?? (signal ? 1 : 0)));
      });

      if (started.length > 0 && !opts.keepStack) await stackDown({ projectRoot: PROJECT_ROOT, only: started });

      if (!existsSync(resultsFile)) {
        console.log('0 passed, 1 failed');
        process.exitCode = code || 1;
        return;
      }
      const r = JSON.parse(readFileSync(resultsFile, 'utf8')) as VitestJson;
      // A file that fails to load counts as a failure even though no test in it ran.
      const failed = r.numFailedTests + (r.numFailedTests === 0 ? r.numFailedTestSuites : 0);
      console.log(`${r.numPassedTests} passed, ${failed} failed, ${r.numPendingTests + r.numTodoTests} skipped`);
      process.exitCode = code;
    });
}
