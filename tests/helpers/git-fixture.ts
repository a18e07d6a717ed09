import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

/** A real Git repository on disk that tests commit to, push-force, and index. */
export interface GitFixture {
  dir: string;
  write(files: Record<string, string | Buffer>): void;
  remove(...paths: string[]): void;
  git(...args: string[]): string;
  commit(message: string): string;
  head(): string;
  cleanup(): void;
}

export function createGitFixture(branch = 'main'): GitFixture {
  const dir = mkdtempSync(path.join(tmpdir(), 'pk-fixture-'));
  const git = (...args: string[]) =>
    execFileSync('git', args, {
      cwd: dir,
      encoding: 'utf8',
      env: {
        ...process.env,
        GIT_AUTHOR_NAME: 'Test',
        GIT_AUTHOR_EMAIL: 'test@example.invalid',
        GIT_COMMITTER_NAME: 'Test',
        GIT_COMMITTER_EMAIL: 'test@example.invalid',
      },
    }).trim();
  git('init', '--quiet', `--initial-branch=${branch}`);
  return {
    dir,
    git,
    write(files) {
      for (const [rel, content] of Object.entries(files)) {
        const full = path.join(dir, rel);
        mkdirSync(path.dirname(full), { recursive: true });
        writeFileSync(full, content);
      }
    },
    remove(...paths) {
      for (const p of paths) rmSync(path.join(dir, p), { force: true });
    },
    commit(message) {
      git('add', '--all');
      git('commit', '--quiet', '--allow-empty', '-m', message);
      return git('rev-parse', 'HEAD');
    },
    head: () => git('rev-parse', 'HEAD'),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}
