// The `pk-mcp` command runs compiled JavaScript: starting tsx's loader alone costs ~0.3 s and every
// TypeScript module it loads costs more, too much for a one-shot `search`. This file (plain JavaScript,
// so it needs no loader) keeps an esbuild bundle of scripts/cli.ts under node_modules/.cache/pk-mcp/cli/,
// code-split so each command loads only the modules it uses, and rebuilds it when a source it was built
// from changed (their sizes and mtimes are recorded beside it; checking them takes a few milliseconds).
// Packages stay external: they load from node_modules as they are.
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const CLI_CACHE_DIR = path.join(ROOT, 'node_modules', '.cache', 'pk-mcp', 'cli');
const MANIFEST = path.join(CLI_CACHE_DIR, 'manifest.json');
// Bumped when the build options change, so an old bundle is not taken for a current one.
const FORMAT = 1;

const stamp = (file) => {
  const s = statSync(path.join(ROOT, file), { throwIfNoEntry: false });
  return s ? `${s.size}:${Math.trunc(s.mtimeMs)}` : 'missing';
};

function currentBuild() {
  let manifest;
  try {
    manifest = JSON.parse(readFileSync(MANIFEST, 'utf8'));
  } catch {
    return undefined;
  }
  if (manifest.format !== FORMAT || !existsSync(path.join(CLI_CACHE_DIR, manifest.dir, 'cli.mjs'))) return undefined;
  for (const [file, recorded] of Object.entries(manifest.inputs)) if (stamp(file) !== recorded) return undefined;
  return path.join(CLI_CACHE_DIR, manifest.dir, 'cli.mjs');
}

async function build() {
  const { build: esbuild } = await import('esbuild');
  // A fresh folder per build, then the manifest renamed into place: a CLI running from the previous
  // bundle keeps its chunks, and two commands building at once never mix their outputs.
  const dir = `b${Date.now().toString(36)}${process.pid.toString(36)}`;
  const outdir = path.join(CLI_CACHE_DIR, dir);
  const result = await esbuild({
    absWorkingDir: ROOT,
    entryPoints: { cli: 'scripts/cli.ts' },
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    packages: 'external',
    outdir,
    outExtension: { '.js': '.mjs' },
    chunkNames: 'chunk-[hash]',
    metafile: true,
    logLevel: 'silent',
  });
  const inputs = Object.fromEntries(Object.keys(result.metafile.inputs).map((file) => [file, stamp(file)]));
  mkdirSync(CLI_CACHE_DIR, { recursive: true });
  const tmp = `${MANIFEST}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify({ format: FORMAT, dir, builtAt: new Date().toISOString(), inputs }));
  renameSync(tmp, MANIFEST);
  // Older bundles go once no command can still be loading chunks from them: commands started from one
  // (tests start many at once, some while another rebuilds) load their chunks within seconds.
  for (const d of readdirSync(CLI_CACHE_DIR)) {
    if (!d.startsWith('b') || d === dir) continue;
    const age = Date.now() - (statSync(path.join(CLI_CACHE_DIR, d), { throwIfNoEntry: false })?.mtimeMs ?? Date.now());
    if (age > 10 * 60_000) rmSync(path.join(CLI_CACHE_DIR, d), { recursive: true, force: true });
  }
  return path.join(outdir, 'cli.mjs');
}

/**
 * The compiled CLI's entry, built first when missing or stale; undefined when it cannot be built here
 * (a read-only install, esbuild missing), and the caller runs the sources through tsx instead.
 */
export async function compiledCli() {
  if (process.env.PK_MCP_CLI_FROM_SOURCE === '1') return undefined;
  const current = currentBuild();
  if (current) return pathToFileURL(current).href;
  try {
    return pathToFileURL(await build()).href;
  } catch (err) {
    process.stderr.write(`note: could not compile the CLI (${err instanceof Error ? err.message.split('\n')[0] : String(err)}); running it from source\n`);
    return undefined;
  }
}
