import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { PROJECT_ROOT } from '../project.ts';
import { which } from '../stack/process.ts';
import { PrerequisiteError } from '../stack/service.ts';

/**
 * The offline tools the deployment tests run (there is no Docker engine or
 * Kubernetes cluster on these machines, so the deployment files are checked
 * by the real tools that read them):
 *
 * - `compose-model`: a tiny Go program around compose-go, the loader
 *   `docker compose` itself uses (scripts/tools/compose-model);
 * - `helm`: Helm v4, built from its module with `go install`;
 * - `kubernetes-validate` and `checkov` from PyPI, in a virtualenv.
 *
 * Each lands under `.data/tools/<name>-<version>/`, so a new pin builds anew
 * and an unchanged one is never rebuilt. `node scripts/pk-mcp.js tools prepare`
 * fetches them all (CI runs it); a test that finds one missing fails naming
 * that command.
 */

export const HELM_VERSION = 'v4.3.2';
/** compose-go's own version is pinned in scripts/tools/compose-model/go.mod. */
export const PYTHON_TOOLS = { 'kubernetes-validate': '1.37.0', checkov: '3.3.30' } as const;

export const TOOLS_DIR = path.join(PROJECT_ROOT, '.data', 'tools');
const COMPOSE_MODEL_SRC = path.join(PROJECT_ROOT, 'scripts', 'tools', 'compose-model');

export type ToolName = 'compose-model' | 'helm' | 'kubernetes-validate' | 'checkov' | 'image-deps';

function composeModelKey(): string {
  const h = createHash('sha256');
  for (const f of ['go.mod', 'go.sum', 'main.go']) h.update(readFileSync(path.join(COMPOSE_MODEL_SRC, f)));
  return h.digest('hex').slice(0, 12);
}

/** The production dependencies as the image installs them, keyed by package.json and the lock. */
function imageDepsKey(): string {
  const h = createHash('sha256');
  for (const f of ['package.json', 'package-lock.json']) h.update(readFileSync(path.join(PROJECT_ROOT, f)));
  return h.digest('hex').slice(0, 12);
}

const venvDir = () => path.join(TOOLS_DIR, `pyenv-${Object.entries(PYTHON_TOOLS).map(([n, v]) => `${n}-${v}`).join('-')}`);

/** Where each tool's executable is once prepared. */
export function toolPath(name: ToolName): string {
  switch (name) {
    case 'compose-model':
      return path.join(TOOLS_DIR, `compose-model-${composeModelKey()}`, 'compose-model');
    case 'helm':
      return path.join(TOOLS_DIR, `helm-${HELM_VERSION}`, 'helm');
    case 'kubernetes-validate':
    case 'checkov':
      return path.join(venvDir(), 'bin', name);
    case 'image-deps':
      return path.join(TOOLS_DIR, `image-deps-${imageDepsKey()}`, 'node_modules');
  }
}

/** The tool's path, or an error that says how to get it: a test never passes without the tool it needs. */
export function requireTool(name: ToolName): string {
  const file = toolPath(name);
  if (!existsSync(file)) {
    throw new PrerequisiteError(`${name} is not prepared (${path.relative(PROJECT_ROOT, file)} is missing): run \`node scripts/pk-mcp.js tools prepare\``);
  }
  return file;
}

function run(command: string, args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv; what: string }): void {
  const r = spawnSync(command, args, { cwd: options.cwd, env: { ...process.env, ...options.env }, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (r.status !== 0) {
    const out = `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? String(r.error) : ''}`.trim().split('\n').slice(-15).join('\n');
    throw new Error(`${options.what} failed (${command} ${args.join(' ')}):\n${out}`);
  }
}

/** Builds into a temporary folder and renames it into place: an interrupted build never looks prepared. */
function buildInto(target: string, build: (tmp: string) => void): void {
  const tmp = `${target}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  try {
    build(tmp);
    rmSync(target, { recursive: true, force: true });
    renameSync(tmp, target);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

function needGo(): string {
  const go = which('go');
  if (!go) throw new PrerequisiteError('the deployment checks build compose-go and Helm with Go: install Go 1.24+ (Debian: `apt-get install golang`)');
  return go;
}

export function prepareComposeModel(log: (m: string) => void): 'present' | 'built' {
  const exe = toolPath('compose-model');
  if (existsSync(exe)) return 'present';
  const go = needGo();
  log('tools: building compose-model (compose-go loader)');
  buildInto(path.dirname(exe), (tmp) =>
    // -mod=readonly: go.sum pins every module; the build never rewrites the project's files.
    run(go, ['build', '-mod=readonly', '-trimpath', '-o', path.join(tmp, 'compose-model'), '.'], { cwd: COMPOSE_MODEL_SRC, env: { CGO_ENABLED: '0' }, what: 'building compose-model' }),
  );
  return 'built';
}

export function prepareHelm(log: (m: string) => void): 'present' | 'built' {
  const exe = toolPath('helm');
  if (existsSync(exe)) return 'present';
  const go = needGo();
  log(`tools: building Helm ${HELM_VERSION} with go install (first run only: a few minutes on 2 cores)`);
  buildInto(path.dirname(exe), (tmp) =>
    run(go, ['install', '-trimpath', `helm.sh/helm/v4/cmd/helm@${HELM_VERSION}`], { env: { GOBIN: tmp, CGO_ENABLED: '0', GOFLAGS: '-mod=mod' }, what: `go install helm ${HELM_VERSION}` }),
  );
  return 'built';
}

export function preparePythonTools(log: (m: string) => void): 'present' | 'built' {
  const dir = venvDir();
  if (existsSync(path.join(dir, 'bin', 'checkov')) && existsSync(path.join(dir, 'bin', 'kubernetes-validate'))) return 'present';
  const python = which('python3');
  if (!python) throw new PrerequisiteError('kubernetes-validate and checkov run in a Python virtualenv: install python3 with venv (Debian: `apt-get install python3-venv`)');
  log(`tools: installing ${Object.entries(PYTHON_TOOLS).map(([n, v]) => `${n}==${v}`).join(', ')} into a virtualenv`);
  // A virtualenv is not relocatable (its scripts name their interpreter by path): build it in place, mark it done last.
  rmSync(dir, { recursive: true, force: true });
  run(python, ['-m', 'venv', dir], { what: 'creating the virtualenv' });
  const pip = path.join(dir, 'bin', 'pip');
  run(pip, ['install', '--quiet', '--disable-pip-version-check', ...Object.entries(PYTHON_TOOLS).map(([n, v]) => `${n}==${v}`)], { what: 'pip install' });
  return 'built';
}

/**
 * The image's production node_modules (compose/Dockerfile's `deps` stage, the same command), for the test that
 * runs the compiled entrypoint as the image would: `npm ci --omit=dev --omit=optional --ignore-scripts`.
 */
export function prepareImageDeps(log: (m: string) => void): 'present' | 'built' {
  const modules = toolPath('image-deps');
  if (existsSync(modules)) return 'present';
  const npm = which('npm');
  if (!npm) throw new PrerequisiteError('npm is needed to install the image\'s production dependencies');
  log('tools: installing the image\'s production dependencies (npm ci --omit=dev --omit=optional)');
  buildInto(path.dirname(modules), (tmp) => {
    for (const f of ['package.json', 'package-lock.json']) writeFileSync(path.join(tmp, f), readFileSync(path.join(PROJECT_ROOT, f)));
    run(npm, ['ci', '--omit=dev', '--omit=optional', '--ignore-scripts', '--no-audit', '--no-fund'], { cwd: tmp, what: 'npm ci --omit=dev' });
    // As the Dockerfile does: onnxruntime ships every OS in one package.
    for (const os of ['darwin', 'win32']) {
      for (const napi of ['napi-v3', 'napi-v6']) rmSync(path.join(tmp, 'node_modules', 'onnxruntime-node', 'bin', napi, os), { recursive: true, force: true });
    }
  });
  return 'built';
}

/** Fetches and builds every tool that is not there yet; each step names what it needs when it cannot run. */
export function prepareTools(log: (m: string) => void, only?: ToolName[]): Record<string, string> {
  const want = (n: ToolName) => !only || only.includes(n);
  const result: Record<string, string> = {};
  mkdirSync(TOOLS_DIR, { recursive: true });
  if (want('compose-model')) result['compose-model'] = prepareComposeModel(log);
  if (want('helm')) result.helm = prepareHelm(log);
  if (want('kubernetes-validate') || want('checkov')) result['kubernetes-validate, checkov'] = preparePythonTools(log);
  if (want('image-deps')) result['image-deps'] = prepareImageDeps(log);
  writeFileSync(path.join(TOOLS_DIR, 'README'), 'Built by `node scripts/pk-mcp.js tools prepare` (scripts/tools/tools.ts); safe to delete.\n');
  return result;
}
