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
    // The limit, plus what arrives in the read that crosses it (one pipe buffer).
    expect(stats.peakQueuedBytes).toBeGreaterThan(0);
    expect(stats.peakQueuedBytes).toBeLessThan(256 * 1024 + 128 * 1024);
  });
});
