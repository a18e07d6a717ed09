import { spawn } from 'node:child_process';
import path from 'node:path';
import type { Config } from '../../shared/config/config.ts';
import { PROJECT_ROOT } from '../../scripts/project.ts';

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The environment a user's shell would give `pk-mcp` for a test's isolated stores (local embeddings unless overridden). */
export function cliEnv(config: Config, overrides: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return {
    ...process.env,
    REDIS_URL: config.redisUrl,
    DATABASE_URL: config.databaseUrl,
    DATABASE_SCHEMA: config.databaseSchema,
    CHROMA_URL: config.chromaUrl,
    CHROMA_COLLECTION_PREFIX: config.chromaCollectionPrefix,
    NEO4J_URI: config.neo4jUri,
    NEO4J_USER: config.neo4jUser,
    NEO4J_PASSWORD: config.neo4jPassword,
    NEO4J_DATABASE: config.neo4jDatabase,
    QUEUE_PREFIX: config.queuePrefix,
    WORKSPACE_DIR: config.workspaceDir,
    LOG_LEVEL: 'silent',
    EMBEDDING_PROVIDER: 'local',
    OPENAI_API_KEY: '',
    CI: 'true',
    ...overrides,
  };
}

/**
 * Runs the real CLI as a child process. Asynchronous on purpose: the workers run in this
 * process, and a synchronous spawn would stop them while `index --wait` waits on them.
 */
export function runCli(env: NodeJS.ProcessEnv, ...args: string[]): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(PROJECT_ROOT, 'scripts/pk-mcp.js'), ...args], { cwd: PROJECT_ROOT, env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 50_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}
