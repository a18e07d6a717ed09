import { mkdirSync, mkdtempSync, openSync, fsyncSync, closeSync, renameSync, rmSync, existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import * as tar from 'tar';
import { AppError } from '../errors.ts';
import { MANIFEST_FILE } from './manifest.ts';

/** A scratch folder beside the backups (same file system, so the final rename is atomic). */
export function scratchDir(backupDir: string, label: string): string {
  mkdirSync(backupDir, { recursive: true });
  return mkdtempSync(path.join(backupDir, `.tmp-${label}-`));
}

/**
 * Packs a finished set: manifest first (a reader finds it without unpacking the rest), then the parts; written
 * to a temporary name, flushed to disk and renamed, so the folder only ever holds whole sets.
 */
export async function packSet(dir: string, files: string[], target: string): Promise<void> {
  const temp = path.join(path.dirname(target), `.tmp-${path.basename(target)}`);
  try {
    await tar.create({ gzip: { level: 6 }, cwd: dir, file: temp, portable: true, noDirRecurse: true }, [MANIFEST_FILE, ...files]);
    const fd = openSync(temp, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(temp, target);
  } finally {
    if (existsSync(temp)) rmSync(temp, { force: true });
  }
}

/**
 * Unpacks a set into `dest`. A truncated or damaged archive (gzip's own checksum, tar's headers) fails here
 * with one line, before anything reads the parts; entries that would land outside `dest` are refused.
 */
export async function unpackSet(file: string, dest: string): Promise<string[]> {
  const entries: string[] = [];
  try {
    await tar.extract({
      file,
      cwd: dest,
      strict: true,
      preservePaths: false,
      filter: (p, entry) => {
        const type = (entry as { type?: string }).type;
        if (type !== 'File' && type !== 'OldFile' && type !== 'Directory') throw new Error(`entry ${p} is a ${type}, not a file`);
        if (type !== 'Directory') entries.push(p.replace(/^(\.\/)+/, ''));
        return true;
      },
    });
  } catch (err) {
    throw new AppError(400, 'backup_damaged', `${path.basename(file)} is damaged or truncated and was not restored: ${err instanceof Error ? err.message : String(err)}`);
  }
  return entries;
}

/** Files a set folder holds, relative to it. */
export function filesUnder(dir: string, base = dir): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) out.push(...filesUnder(full, base));
    else out.push(path.relative(base, full).split(path.sep).join('/'));
  }
  return out;
}
