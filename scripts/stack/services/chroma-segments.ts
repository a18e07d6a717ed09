import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { which } from '../process.ts';

/** Chroma names each segment's folder by the segment's UUID. */
export const SEGMENT_DIR = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

function folderBytes(dir: string): number {
  let total = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    total += entry.isDirectory() ? folderBytes(full) : statSync(full).size;
  }
  return total;
}

/**
 * Chroma 1.x (single node) drops a deleted collection from its database but
 * leaves the collection's HNSW segment folder on disk (chroma-core/chroma
 * #5259, #5520): every removed repository, and every test or benchmark run,
 * left ~60 MB per 40k vectors behind. With Chroma stopped, the folders whose
 * segment id its database no longer lists are removed. Reads the database
 * with the `sqlite3` command (read-only); without it, nothing is removed.
 */
export function removeDeletedSegments(dataDir: string): { removed: number; bytes: number } | { skipped: string } {
  const db = path.join(dataDir, 'chroma.sqlite3');
  if (!existsSync(db)) return { removed: 0, bytes: 0 };
  const sqlite = which('sqlite3');
  if (!sqlite) return { skipped: 'the sqlite3 command is not installed' };
  const listed = spawnSync(sqlite, ['-readonly', db, 'SELECT id FROM segments'], { encoding: 'utf8' });
  if (listed.status !== 0) return { skipped: `could not read ${db}: ${(listed.stderr || '').trim().slice(0, 200)}` };
  const live = new Set(listed.stdout.split('\n').map((l) => l.trim()).filter(Boolean));
  const orphans = readdirSync(dataDir, { withFileTypes: true })
    .filter((e) => e.isDirectory() && SEGMENT_DIR.test(e.name) && !live.has(e.name))
    .map((e) => path.join(dataDir, e.name));
  // A database listing no segment at all while folders exist is more likely misread than empty: keep everything.
  if (orphans.length > 0 && live.size === 0) return { skipped: 'the database lists no segments' };
  let bytes = 0;
  for (const dir of orphans) {
    bytes += folderBytes(dir);
    rmSync(dir, { recursive: true, force: true });
  }
  return { removed: orphans.length, bytes };
}
