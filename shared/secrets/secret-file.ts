import { createHash, randomBytes } from 'node:crypto';
import { constants, readFileSync } from 'node:fs';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import path from 'node:path';

/**
 * Secrets kept as files, one value per file, in the style of Docker and Kubernetes secrets: the `*_FILE`
 * variables name them, and a rotation replaces a file's content atomically.
 */

/** Where a rotation keeps the value it is about to apply, beside the file: see `FileSecret.authFailed`. */
export const pendingPath = (file: string) => `${file}.next`;

/** A short, one-way fingerprint of a value: what processes report and audit rows carry, never the value. */
export function fingerprint(value: string): string {
  return createHash('sha256').update(value, 'utf8').digest('hex').slice(0, 12);
}

/** A new secret: 32 random bytes, URL-safe, so it fits a connection URL, an HTTP header and a shell alike. */
export function generateSecret(): string {
  return randomBytes(32).toString('base64url');
}

/** A file's value without the one trailing newline editors and `echo` add; undefined when there is no file. */
export function readSecretFileSync(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8').replace(/\r?\n$/, '');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/**
 * Replaces `file` with `value` so that a reader sees the old content or the new, never a part: a temp file in
 * the same folder (a rename across file systems is a copy), mode 0600 from its creation, fsync, rename over the
 * file, then fsync of the folder so the rename itself survives a crash. (npm's write-file-atomic does all but
 * the last step.) Temp names start with a dot, so nothing reading the folder's secrets takes one for a secret.
 */
export async function writeSecretFile(file: string, value: string): Promise<void> {
  const dir = path.dirname(file);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const temp = path.join(dir, `.${path.basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
  const handle = await open(temp, constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY, 0o600);
  try {
    await handle.writeFile(`${value}\n`, 'utf8');
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await rename(temp, file);
  } catch (err) {
    await rm(temp, { force: true });
    throw err;
  }
  await syncDir(dir);
}

export async function removeSecretFile(file: string): Promise<void> {
  await rm(file, { force: true });
  await syncDir(path.dirname(file));
}

async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, constants.O_RDONLY);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * A credential a connection reads from a file, as it is now. Connections ask for `value` each time they
 * authenticate (a new pooled connection, a reconnect); it is cached in memory and re-read when a rotation says
 * so (`refresh`), when the file changes under it, and when the store refuses it (`authFailed`).
 */
export class FileSecret {
  #value: string;

  constructor(
    readonly name: string,
    readonly file: string,
  ) {
    const value = readSecretFileSync(file);
    if (value === undefined || value === '') throw new Error(`secret file ${file} (${name}) is missing or empty`);
    this.#value = value;
  }

  get value(): string {
    return this.#value;
  }

  get fingerprint(): string {
    return fingerprint(this.#value);
  }

  /** What the file holds now (undefined when it is gone or empty): the value is not changed. */
  peek(): string | undefined {
    const value = readSecretFileSync(this.file);
    return value === '' ? undefined : value;
  }

  /** Takes `value` as the current one (after a process checked that the store accepts it). */
  adopt(value: string): void {
    this.#value = value;
  }

  /**
   * The store refused `failed`. Between a rotation changing a store that holds one password (Postgres, Neo4j)
   * and replacing the file, only the pending value (`<file>.next`, written before the store changed) works;
   * after a rollback only the file's. So: the file's value if it differs from the refused one, else the pending
   * value if there is one (kept while it exists). The caller retries with whatever `value` is then.
   */
  authFailed(failed: string): void {
    const pending = readSecretFileSync(pendingPath(this.file));
    // While a rotation's pending value exists it is what the store has, or is about to have: a refusal of it
    // is a lockout after other refused logins (Neo4j), not a reason to fall back. A rollback removes it.
    if (pending && pending === failed) return;
    const onDisk = this.peek();
    if (onDisk !== undefined && onDisk !== failed) {
      this.#value = onDisk;
      return;
    }
    if (pending) this.#value = pending;
    else if (onDisk !== undefined) this.#value = onDisk;
  }
}
