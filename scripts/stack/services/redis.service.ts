import { spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { spawnDetached, which } from '../process.ts';
import { PrerequisiteError, type LocalService, type StackContext } from '../service.ts';

function installWithApt(ctx: StackContext): boolean {
  if (!ctx.autoInstall || process.getuid?.() !== 0 || !which('apt-get')) return false;
  ctx.log('redis-server not found: installing Debian package redis-server');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const install = () => spawnSync('apt-get', ['install', '-y', '-qq', 'redis-server'], { stdio: 'ignore', env }).status === 0;
  if (install()) return true;
  spawnSync('apt-get', ['update', '-qq'], { stdio: 'ignore', env });
  return install();
}

/** Debian's redis-server, configured as BullMQ needs it (noeviction) and bound to loopback. */
export const redisService: LocalService = {
  name: 'redis',
  envVar: 'REDIS_URL',
  stopSignal: 'SIGTERM',
  startTimeoutMs: 20_000,

  async prepare(ctx) {
    if (which('redis-server')) return;
    if (installWithApt(ctx) && which('redis-server')) return;
    throw new PrerequisiteError(
      'redis-server is not installed: install it (Debian/Ubuntu: `sudo apt-get install redis-server`, macOS: `brew install redis`) or set REDIS_URL to an existing Redis 7',
    );
  },

  async start(ctx, port) {
    const dir = path.join(ctx.dataDir, 'redis');
    mkdirSync(dir, { recursive: true });
    const pid = spawnDetached(
      which('redis-server')!,
      [
        '--bind', '127.0.0.1',
        '--port', String(port),
        '--dir', dir,
        '--daemonize', 'no',
        // BullMQ must never lose keys to eviction.
        '--maxmemory-policy', 'noeviction',
        '--appendonly', 'yes',
        '--save', '',
        '--protected-mode', 'yes',
      ],
      path.join(ctx.dataDir, 'logs', 'redis.log'),
    );
    return { pid, url: `redis://127.0.0.1:${port}` };
  },
};
