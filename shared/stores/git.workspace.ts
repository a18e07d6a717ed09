import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { simpleGit, type SimpleGit } from 'simple-git';

/**
 * Git access for indexing: one bare mirror per repository under the workspace
 * folder, fetched with simple-git. Blobs are read straight from the object
 * store (`git cat-file --batch`), so no working tree is ever checked out.
 */

export interface TreeEntry {
  path: string;
  blobSha: string;
  size: number;
}

export type FileChange =
  | { status: 'added' | 'modified'; path: string }
  | { status: 'deleted'; path: string }
  | { status: 'renamed'; from: string; path: string };

export class GitError extends Error {
  constructor(
    message: string,
    /** false when retrying cannot help (unknown host, bad credentials, missing branch, empty repository). */
    readonly retryable: boolean,
  ) {
    super(message);
    this.name = 'GitError';
  }
}

export interface GitCredentials {
  /** Token for https remotes (GitHub, GitLab, Gitea…); sent as an HTTP header, never put in a URL or argv. */
  token?: string;
}

/** Environment that hands git the token through config variables (not argv, which `ps` shows). */
function gitEnv(credentials: GitCredentials): Record<string, string> {
  const env: Record<string, string> = {
    GIT_TERMINAL_PROMPT: '0',
    GIT_CONFIG_NOSYSTEM: '1',
    LANG: 'C',
  };
  if (process.env.PATH) env.PATH = process.env.PATH;
  if (process.env.HOME) env.HOME = process.env.HOME;
  if (credentials.token) {
    const basic = Buffer.from(`x-access-token:${credentials.token}`).toString('base64');
    env.GIT_CONFIG_COUNT = '1';
    env.GIT_CONFIG_KEY_0 = 'http.extraHeader';
    env.GIT_CONFIG_VALUE_0 = `Authorization: Basic ${basic}`;
  }
  return env;
}

/** Turns git's stderr into one sentence a user can act on, and says whether a retry may help. */
export function explainGitFailure(stderr: string, source: string, branch?: string): GitError {
  const text = stderr.replace(/\s+/g, ' ').trim();
  const rules: Array<[RegExp, string, boolean]> = [
    [/Could not resolve host|Name or service not known|unable to access.*Couldn't resolve/i, `cannot reach ${source}: host not found`, false],
    [/Authentication failed|could not read Username|403|401|terminal prompts disabled|invalid credentials/i, `access to ${source} was refused: check the token (GIT_TOKEN) and its permissions`, false],
    [/couldn't find remote ref|Remote branch .* not found|invalid refspec/i, `branch "${branch}" does not exist in ${source}`, false],
    [/Repository not found|does not appear to be a git repository|not found|No such file or directory/i, `repository ${source} was not found`, false],
    [/Connection refused|Connection timed out|Failed to connect|timed out|early EOF|RPC failed|reset by peer/i, `cannot connect to ${source} (${text.slice(0, 200)})`, true],
  ];
  for (const [pattern, message, retryable] of rules) if (pattern.test(text)) return new GitError(message, retryable);
  return new GitError(`git failed for ${source}: ${text.slice(0, 300)}`, true);
}

/** A URL or path safe to show: any user:password in it is dropped. */
export function redactSource(source: string): string {
  try {
    const url = new URL(source);
    url.username = '';
    url.password = '';
    return url.toString();
  } catch {
    return source;
  }
}

/**
 * simple-git strips git's config and prompt variables unless allowed by name;
 * these are the ones `gitEnv` sets on purpose (no prompts, token as a header).
 * It also refuses config passed through the environment (`GIT_CONFIG_COUNT`)
 * unless that is enabled: the only such config here is the token's header.
 */
const GIT_OPTIONS = {
  maxConcurrentProcesses: 4,
  timeout: { block: 10 * 60_000 },
  allowEnvironment: ['GIT_TERMINAL_PROMPT', 'GIT_CONFIG_NOSYSTEM', 'GIT_CONFIG_COUNT', 'GIT_CONFIG_KEY_0', 'GIT_CONFIG_VALUE_0'],
  unsafe: { allowUnsafeConfigEnvCount: true },
} as const;

export interface GitWorkspace {
  /** The bare mirror's folder. */
  dir: string;
  /** Fetches `branch` from the source and returns its head commit. */
  fetch(branch: string): Promise<string>;
  /** The remote's default branch (from its HEAD symref). */
  defaultBranch(): Promise<string>;
  hasCommit(sha: string): Promise<boolean>;
  listTree(commit: string): Promise<TreeEntry[]>;
  diff(from: string, to: string): Promise<FileChange[]>;
  /**
   * Reads blobs by id; calls `onBlob` in the order given, one at a time. Git is
   * read ahead of `onBlob` by at most about `maxQueuedBytes` (default 8 MiB), so
   * memory stays bounded however large the repository is.
   */
  readBlobs(
    shas: string[],
    onBlob: (sha: string, content: Buffer) => Promise<void> | void,
    options?: { maxQueuedBytes?: number },
  ): Promise<BlobReadStats>;
  remove(): Promise<void>;
}

export interface BlobReadStats {
  /** The most blob bytes read from git and not yet handed to (and finished by) `onBlob` at one time. */
  peakQueuedBytes: number;
}

const DEFAULT_MAX_QUEUED_BYTES = 8 * 1024 * 1024;

/**
 * Fetches into one mirror, one at a time in this process. Two branches of a repository are indexed side by
 * side (the index queue runs two jobs), and git takes a mirror's shallow file and refs under lock files: the
 * second fetch met them and failed, and its run waited for a retry.
 */
const mirrorTurns = new Map<string, Promise<void>>();
function oneAtATime<T>(dir: string, work: () => Promise<T>): Promise<T> {
  const result = (mirrorTurns.get(dir) ?? Promise.resolve()).then(work);
  const turn = result.then(
    () => undefined,
    () => undefined,
  );
  mirrorTurns.set(dir, turn);
  void turn.then(() => mirrorTurns.get(dir) === turn && mirrorTurns.delete(dir));
  return result;
}

/** Where the mirror keeps a fetched branch: one flat name per branch, of fixed length however long the branch's. */
export function mirrorRef(branch: string): string {
  return `refs/pk-mcp/branch-${createHash('sha256').update(branch).digest('hex')}`;
}

export function openGitWorkspace(options: { root: string; key: string; source: string; credentials: GitCredentials }): GitWorkspace {
  const dir = path.join(options.root, options.key);
  const env = gitEnv(options.credentials);
  const shown = redactSource(options.source);
  const git = (): SimpleGit => simpleGit({ ...GIT_OPTIONS, baseDir: dir }).env(env);

  async function ensureMirror(): Promise<void> {
    if (existsSync(path.join(dir, 'HEAD'))) return;
    await mkdir(options.root, { recursive: true });
    // Made aside and renamed into place: a mirror is never seen half made, and another process making the
    // same one at the same time cannot delete this one's files from under it (its fetch then failed on a
    // missing folder, taken for "repository not found").
    const staging = `${dir}.init-${process.pid}-${randomBytes(4).toString('hex')}`;
    try {
      // Bare, no checkout, no tags: only commits, trees and blobs of the branches we fetch.
      await simpleGit({ ...GIT_OPTIONS, baseDir: options.root }).env(env).raw(['init', '--bare', '--quiet', staging]);
      await simpleGit({ ...GIT_OPTIONS, baseDir: staging }).env(env).raw(['remote', 'add', 'origin', options.source]);
      if (path.isAbsolute(options.source)) {
        // A folder on this machine: the objects it has not packed yet (all of them in a freshly committed or
        // imported repository) travel without a delta search and with fast compression. Measured on 2 cores,
        // a first fetch of a 6,000-file repository of loose objects: 1.9 → 1.3 s, the mirror 8 → 9 MB. Objects
        // the source has packed are sent as they are either way.
        // simple-git guards this setting (a remote's upload-pack is a command git runs); this one is a constant.
        await simpleGit({ ...GIT_OPTIONS, baseDir: staging, unsafe: { ...GIT_OPTIONS.unsafe, allowUnsafePack: true } })
          .env(env)
          .raw(['config', 'remote.origin.uploadpack', 'git -c pack.window=0 -c pack.compression=1 upload-pack']);
      }
    } catch (err) {
      await rm(staging, { recursive: true, force: true });
      throw explainGitFailure(String((err as Error).message), shown);
    }
    try {
      await rename(staging, dir);
    } catch (err) {
      if (existsSync(path.join(dir, 'HEAD'))) {
        // Another process made it meanwhile.
        await rm(staging, { recursive: true, force: true });
        return;
      }
      // What a crash left of a mirror made in place (as before): replaced.
      await rm(dir, { recursive: true, force: true });
      await rename(staging, dir).catch(async () => {
        await rm(staging, { recursive: true, force: true });
        throw err;
      });
    }
  }

  return {
    dir,
    fetch: (branch) => oneAtATime(dir, async () => {
      await ensureMirror();
      try {
        // +: a force-pushed branch replaces our copy; --prune drops refs that vanished. --depth=1: indexing reads
        // the head's tree only, and the diff from the last indexed commit needs that commit's tree, which an
        // earlier fetch left here; none of the history in between. On a synthetic 1,500-file repository with
        // 300 commits the first fetch took 0.05 s instead of 0.27 s (1.5 instead of 3.2 MB); on a real project
        // with years of history it is the difference between its head and all of it. Later fetches bring only
        // the objects the new head adds (git marks them forced updates: a shallow copy cannot prove ancestry).
        // Each branch lands on a flat ref of its own, and --refmap= stops git from also updating origin's
        // remote-tracking refs: under refs/heads, a mirror that once fetched `feature` could never fetch
        // `feature/x` (git cannot have both refs), and every run of it failed, retried, on "cannot lock ref".
        await git().raw(['fetch', '--quiet', '--no-tags', '--prune', '--depth=1', '--refmap=', 'origin', `+refs/heads/${branch}:${mirrorRef(branch)}`]);
      } catch (err) {
        const failure = explainGitFailure(String((err as Error).message), shown, branch);
        if (!failure.retryable && failure.message.startsWith('branch')) {
          // "No such branch" in a repository without any branch means it has no commits at all.
          const heads = await git().raw(['ls-remote', '--heads', 'origin']).catch(() => 'unknown');
          if (heads.trim() === '') throw new GitError(`repository ${shown} is empty (no commits yet)`, false);
        }
        throw failure;
      }
      return (await git().raw(['rev-parse', '--verify', `${mirrorRef(branch)}^{commit}`])).trim();
    }),
    async defaultBranch() {
      await oneAtATime(dir, ensureMirror);
      let out: string;
      try {
        out = await git().raw(['ls-remote', '--symref', 'origin', 'HEAD']);
      } catch (err) {
        throw explainGitFailure(String((err as Error).message), shown);
      }
      const match = /^ref: refs\/heads\/(\S+)\s+HEAD/m.exec(out);
      if (!match) throw new GitError(`repository ${shown} is empty (it has no default branch yet)`, false);
      return match[1]!;
    },
    async hasCommit(sha) {
      try {
        await git().raw(['cat-file', '-e', `${sha}^{commit}`]);
        return true;
      } catch {
        return false;
      }
    },
    async listTree(commit) {
      const out = await gitOutput(dir, env, ['ls-tree', '-r', '-l', '-z', '--full-tree', commit]);
      const entries: TreeEntry[] = [];
      for (const record of nulRecords(out)) {
        const tab = record.indexOf(9);
        const [mode, type, sha, size] = record.subarray(0, tab).toString('latin1').split(/\s+/);
        // Only regular files: submodules (commit) and symlinks (120000) carry no content of their own.
        if (type !== 'blob' || mode === '120000') continue;
        entries.push({ path: decodeGitPath(record.subarray(tab + 1)), blobSha: sha!, size: Number(size) });
      }
      return entries;
    },
    async diff(from, to) {
      const out = await gitOutput(dir, env, ['diff', '--name-status', '-z', '-M', '--no-ext-diff', from, to]);
      const parts = nulRecords(out);
      const changes: FileChange[] = [];
      let i = 0;
      const next = () => decodeGitPath(parts[i++]!);
      while (i < parts.length) {
        const status = parts[i++]!.toString('latin1');
        if (status.startsWith('R')) {
          const from = next();
          changes.push({ status: 'renamed', from, path: next() });
        } else if (status.startsWith('C')) {
          i++;
          changes.push({ status: 'added', path: next() });
        } else if (status === 'D') {
          changes.push({ status: 'deleted', path: next() });
        } else if (status === 'A') {
          changes.push({ status: 'added', path: next() });
        } else {
          changes.push({ status: 'modified', path: next() });
        }
      }
      return changes;
    },
    async readBlobs(shas, onBlob, options) {
      if (shas.length === 0) return { peakQueuedBytes: 0 };
      return catFileBatch(dir, env, shas, onBlob, options?.maxQueuedBytes ?? DEFAULT_MAX_QUEUED_BYTES);
    },
    async remove() {
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** The non-empty records of git's `-z` output. */
function nulRecords(out: Buffer): Buffer[] {
  const records: Buffer[] = [];
  for (let start = 0; start < out.length; ) {
    let end = out.indexOf(0, start);
    if (end === -1) end = out.length;
    if (end > start) records.push(out.subarray(start, end));
    start = end + 1;
  }
  return records;
}

// ignoreBOM: a name may start with U+FEFF like any other character; the decoder would drop it.
const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * A path from git's `-z` output as text. Git stores names as bytes; one that
 * is not UTF-8 (`\xff`, Latin-1 names committed on old systems) keeps its
 * valid parts and shows each other byte as git quotes it (`caf\351.txt`),
 * so distinct names stay distinct: decoded with replacement characters, two
 * such files got one path and publishing the run failed on the duplicate.
 */
export function decodeGitPath(bytes: Buffer): string {
  try {
    return strictUtf8.decode(bytes);
  } catch {
    // below, byte by byte
  }
  let out = '';
  let run = 0;
  for (let i = 0; i < bytes.length; ) {
    const n = utf8SequenceLength(bytes, i);
    if (n > 0) {
      i += n;
      continue;
    }
    out += strictUtf8.decode(bytes.subarray(run, i)) + `\\${bytes[i]!.toString(8).padStart(3, '0')}`;
    run = ++i;
  }
  return out + strictUtf8.decode(bytes.subarray(run));
}

/** Bytes of the well-formed UTF-8 sequence at `i` (no overlongs, surrogates or code points past U+10FFFF), 0 if none. */
function utf8SequenceLength(b: Buffer, i: number): number {
  const lead = b[i]!;
  if (lead < 0x80) return 1;
  const cont = (k: number, lo = 0x80, hi = 0xbf) => i + k < b.length && b[i + k]! >= lo && b[i + k]! <= hi;
  if (lead >= 0xc2 && lead <= 0xdf) return cont(1) ? 2 : 0;
  if (lead >= 0xe0 && lead <= 0xef) {
    const [lo, hi] = lead === 0xe0 ? [0xa0, 0xbf] : lead === 0xed ? [0x80, 0x9f] : [0x80, 0xbf];
    return cont(1, lo, hi) && cont(2) ? 3 : 0;
  }
  if (lead >= 0xf0 && lead <= 0xf4) {
    const [lo, hi] = lead === 0xf0 ? [0x90, 0xbf] : lead === 0xf4 ? [0x80, 0x8f] : [0x80, 0xbf];
    return cont(1, lo, hi) && cont(2) && cont(3) ? 4 : 0;
  }
  return 0;
}

/**
 * Runs git and returns its stdout as bytes: simple-git hands output over as
 * UTF-8 text, which loses every name that is not UTF-8.
 */
function gitOutput(dir: string, env: Record<string, string>, args: string[]): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const child = spawn('git', args, { cwd: dir, env });
    const out: Buffer[] = [];
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolve(Buffer.concat(out));
      else reject(new Error(`git ${args[0]} failed (code ${code}): ${stderr.trim()}`));
    });
  });
}

/**
 * Streams blobs through one `git cat-file --batch` process. simple-git buffers
 * whole outputs, which would hold every blob of a large repository in memory
 * at once; here each blob is handed on as soon as it is complete, and git's
 * output is paused while more than `maxQueuedBytes` wait for `onBlob` (which
 * is slower than git: it parses and stages every file).
 */
function catFileBatch(
  dir: string,
  env: Record<string, string>,
  shas: string[],
  onBlob: (sha: string, content: Buffer) => Promise<void> | void,
  maxQueuedBytes: number,
): Promise<BlobReadStats> {
  return new Promise((resolve, reject) => {
    const child = spawn('git', ['cat-file', '--batch'], { cwd: dir, env });
    let buffer: Buffer = Buffer.alloc(0);
    let index = 0;
    let failed = false;
    let chain = Promise.resolve();
    let stderr = '';
    let queuedBytes = 0;
    let peakQueuedBytes = 0;
    const fail = (err: Error) => {
      if (failed) return;
      failed = true;
      child.kill();
      reject(err);
    };
    const settle = (size: number) => {
      queuedBytes -= size;
      if (child.stdout.isPaused() && queuedBytes <= maxQueuedBytes / 2) child.stdout.resume();
    };
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', fail);
    child.stdout.on('data', (data: Buffer) => {
      buffer = buffer.length ? Buffer.concat([buffer, data]) : data;
      peakQueuedBytes = Math.max(peakQueuedBytes, queuedBytes + buffer.length);
      while (!failed) {
        const nl = buffer.indexOf(10);
        if (nl < 0) break;
        const header = buffer.subarray(0, nl).toString('utf8');
        if (header.endsWith(' missing')) return fail(new Error(`git object ${header.split(' ')[0]} is missing`));
        const size = Number(header.split(' ')[2]);
        if (buffer.length < nl + 1 + size + 1) break;
        const content = Buffer.from(buffer.subarray(nl + 1, nl + 1 + size));
        buffer = buffer.subarray(nl + 1 + size + 1);
        const sha = shas[index++]!;
        queuedBytes += size;
        chain = chain.then(() => onBlob(sha, content)).then(() => settle(size));
        chain.catch(fail);
      }
      if (queuedBytes > maxQueuedBytes) child.stdout.pause();
    });
    child.on('close', (code) => {
      if (failed) return;
      if (code !== 0 || index !== shas.length) {
        return fail(new Error(`git cat-file failed (code ${code}): ${stderr.trim()}`));
      }
      chain.then(() => resolve({ peakQueuedBytes }), fail);
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(`${shas.join('\n')}\n`);
  });
}
