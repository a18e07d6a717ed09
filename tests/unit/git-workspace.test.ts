import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openGitWorkspace } from '../../shared/stores/git.workspace.ts';
import { createGitFixture, type GitFixture } from '../helpers/git-fixture.ts';

describe('git workspace mirrors', () => {
  const cleanups: Array<() => void> = [];
  afterEach(() => {
    for (const c of cleanups.splice(0)) c();
  });

  function setup(): { fixture: GitFixture; root: string } {
    const fixture = createGitFixture();
    const root = mkdtempSync(path.join(tmpdir(), 'pk-ws-test-'));
    cleanups.push(fixture.cleanup, () => rmSync(root, { recursive: true, force: true }));
    fixture.write({ 'src/a.ts': 'export const a = 1;\n', 'README.md': '# fixture\n' });
    return { fixture, root };
  }

  const uploadPack = (dir: string) => {
    try {
      return execFileSync('git', ['-C', dir, 'config', '--get', 'remote.origin.uploadpack'], { encoding: 'utf8' }).trim();
    } catch {
      return null; // not set: git exits 1
    }
  };

  it('fetches a local folder with fast packing of its loose objects, and gets the same commit and blobs', async () => {
    const { fixture, root } = setup();
    const head = fixture.commit('first');
    const ws = openGitWorkspace({ root, key: 'local', source: fixture.dir, credentials: {} });

    expect(await ws.fetch('main')).toBe(head);
    expect(uploadPack(ws.dir)).toBe('git -c pack.window=0 -c pack.compression=1 upload-pack');
    const tree = await ws.listTree(head);
    const blobs = new Map<string, string>();
    await ws.readBlobs(tree.map((e) => e.blobSha), (sha, content) => void blobs.set(sha, content.toString('utf8')));
    expect([...blobs.values()].sort()).toEqual(['# fixture\n', 'export const a = 1;\n']);

    // Later commits arrive through the same setting.
    fixture.write({ 'src/b.ts': 'export const b = 2;\n' });
    const second = fixture.commit('second');
    expect(await ws.fetch('main')).toBe(second);
  });

  it('fetches only the head commit, and later fetches still diff against the commit indexed before', async () => {
    const { fixture, root } = setup();
    for (let i = 0; i < 5; i++) {
      fixture.write({ 'src/a.ts': `export const a = ${i};\n` });
      fixture.commit(`history ${i}`);
    }
    const ws = openGitWorkspace({ root, key: 'shallow', source: fixture.dir, credentials: {} });
    const first = await ws.fetch('main');
    const inMirror = (...args: string[]) => execFileSync('git', ['-C', ws.dir, ...args], { encoding: 'utf8' }).trim();
    expect(inMirror('rev-parse', '--is-shallow-repository')).toBe('true');
    expect(inMirror('rev-list', '--count', first)).toBe('1');

    fixture.write({ 'src/b.ts': 'export const b = 2;\n' });
    fixture.remove('README.md');
    fixture.commit('later');
    const second = await ws.fetch('main');
    expect(await ws.hasCommit(first)).toBe(true);
    expect(await ws.diff(first, second)).toEqual([
      { status: 'deleted', path: 'README.md' },
      { status: 'added', path: 'src/b.ts' },
    ]);
  });

  it('lists and diffs names that are not UTF-8, each under a name of its own', async () => {
    const { fixture, root } = setup();
    const latin1 = (byte: number) => Buffer.concat([Buffer.from('src/caf'), Buffer.from([byte]), Buffer.from('.ts')]);
    // Raw names go through git's stdin: neither argv nor the file system (in UTF-8 locales) carries them.
    const stage = (name: Buffer, content: string) => {
      const sha = execFileSync('git', ['hash-object', '-w', '--stdin'], { cwd: fixture.dir, input: content }).toString().trim();
      execFileSync('git', ['update-index', '-z', '--add', '--index-info'], { cwd: fixture.dir, input: Buffer.concat([Buffer.from(`100644 ${sha}\t`), name, Buffer.from([0])]) });
    };
    fixture.commit('first');
    stage(latin1(0xe9), 'export const e = 1;\n'); // é in Latin-1
    stage(latin1(0xe8), 'export const e = 2;\n'); // è
    stage(Buffer.from('\ufeffbom-named.ts'), 'export const b = 3;\n'); // U+FEFF is a character of the name here
    fixture.git('commit', '--quiet', '-m', 'latin-1 names');
    const ws = openGitWorkspace({ root, key: 'names', source: fixture.dir, credentials: {} });
    const first = await ws.fetch('main');
    expect((await ws.listTree(first)).map((e) => e.path).sort()).toEqual(['README.md', 'src/a.ts', 'src/caf\\350.ts', 'src/caf\\351.ts', '\ufeffbom-named.ts'].sort());

    execFileSync('git', ['update-index', '-z', '--force-remove', '--stdin'], { cwd: fixture.dir, input: Buffer.concat([latin1(0xe9), Buffer.from([0])]) });
    stage(latin1(0xea), 'export const e = 1;\n');
    fixture.git('commit', '--quiet', '-m', 'rename');
    expect(await ws.diff(first, await ws.fetch('main'))).toEqual([{ status: 'renamed', from: 'src/caf\\351.ts', path: 'src/caf\\352.ts' }]);
  });

  it('fetches a branch named like a folder of a branch fetched before', async () => {
    const { fixture, root } = setup();
    fixture.commit('first');
    fixture.git('branch', 'feature');
    const ws = openGitWorkspace({ root, key: 'nested', source: fixture.dir, credentials: {} });
    await ws.fetch('feature');
    // Git keeps refs as paths: `feature` and `feature/x` cannot both be branches, in the source or in a mirror.
    fixture.git('branch', '-D', 'feature');
    fixture.git('branch', 'feature/x');
    expect(await ws.fetch('feature/x')).toBe(fixture.head());
    fixture.git('branch', '-D', 'feature/x');
    fixture.git('branch', 'feature');
    expect(await ws.fetch('feature')).toBe(fixture.head());
  });

  it('fetches branches of one mirror at the same time, the mirror made by the first', async () => {
    const { fixture, root } = setup();
    fixture.commit('first');
    const branches = ['main', 'b1', 'b2', 'b3'];
    for (const b of branches.slice(1)) fixture.git('branch', b);
    for (let round = 0; round < 3; round++) {
      const key = `concurrent-${round}`;
      const heads = await Promise.all(branches.map((b) => openGitWorkspace({ root, key, source: fixture.dir, credentials: {} }).fetch(b)));
      expect(heads).toEqual(branches.map(() => fixture.head()));
    }
  });

  it('leaves the upload command of a URL source alone', async () => {
    const { fixture, root } = setup();
    const head = fixture.commit('first');
    const ws = openGitWorkspace({ root, key: 'url', source: `file://${fixture.dir}`, credentials: {} });

    expect(await ws.fetch('main')).toBe(head);
    expect(uploadPack(ws.dir)).toBeNull();
  });

  it('reads blobs ahead of a slow consumer by a bounded amount only, and hands every one over in order', async () => {
    const { fixture, root } = setup();
    // 60 files of 64 KiB (different content each, so 60 blobs): 3.75 MiB, far more than the 256 KiB allowed ahead.
    const files: Record<string, string> = {};
    for (let i = 0; i < 60; i++) files[`src/f${i}.txt`] = `${i}:`.padEnd(64 * 1024, String.fromCharCode(97 + (i % 26)));
    fixture.write(files);
    const head = fixture.commit('big');
    const ws = openGitWorkspace({ root, key: 'slow', source: fixture.dir, credentials: {} });
    await ws.fetch('main');
    const tree = (await ws.listTree(head)).filter((e) => e.path.endsWith('.txt'));
    expect(tree).toHaveLength(60);

    const seen: string[] = [];
    const stats = await ws.readBlobs(
      tree.map((e) => e.blobSha),
      async (sha, content) => {
        seen.push(sha);
        expect(content.length).toBe(64 * 1024);
        await new Promise((r) => setTimeout(r, 2));
      },
      { maxQueuedBytes: 256 * 1024 },
    );
    expect(seen).toEqual(tree.map((e) => e.blobSha));
    // At most the limit, plus the blobs completed by the read that crosses it (one here), plus what is still
    // being read: the unfinished rest of one blob and one more pipe read (64 KiB each). Reading everything ahead
    // would be 3.75 MiB.
    expect(stats.peakQueuedBytes).toBeGreaterThan(0);
    expect(stats.peakQueuedBytes).toBeLessThan(256 * 1024 + 5 * 64 * 1024);
  });
});
