import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { packageDir } from '../../project.ts';
import { spawnDetached } from '../process.ts';
import { PrerequisiteError, type LocalService } from '../service.ts';
import { removeDeletedSegments } from './chroma-segments.ts';

/** The chromadb package's own CLI runs a real Chroma server (Rust core, via native bindings). */
function chromaCli(): string {
  const dir = packageDir('chromadb');
  const manifest = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as { bin: { chroma: string } };
  return path.join(dir, manifest.bin.chroma);
}

export const chromaService: LocalService = {
  name: 'chroma',
  envVar: 'CHROMA_URL',
  stopSignal: 'SIGTERM',
  startTimeoutMs: 30_000,

  async prepare() {
    let cli: string;
    try {
      cli = chromaCli();
    } catch {
      throw new PrerequisiteError('the chromadb package is missing: run `npm install` or set CHROMA_URL');
    }
    if (!existsSync(cli)) throw new PrerequisiteError(`chromadb CLI not found at ${cli}: run \`npm install\` or set CHROMA_URL`);
  },

  async start(ctx, port) {
    const dir = path.join(ctx.dataDir, 'chroma');
    mkdirSync(dir, { recursive: true });
    const gc = removeDeletedSegments(dir);
    if ('skipped' in gc) ctx.log(`chroma: left the folders of deleted collections in place (${gc.skipped})`);
    else if (gc.removed > 0) ctx.log(`chroma: removed ${gc.removed} folder(s) of deleted collections (${Math.round(gc.bytes / 2 ** 20)} MB)`);
    const pid = spawnDetached(
      process.execPath,
      [chromaCli(), 'run', '--path', dir, '--host', '127.0.0.1', '--port', String(port)],
      path.join(ctx.dataDir, 'logs', 'chroma.log'),
      { env: { ...process.env, ANONYMIZED_TELEMETRY: 'False' } },
    );
    return { pid, url: `http://127.0.0.1:${port}` };
  },
};
