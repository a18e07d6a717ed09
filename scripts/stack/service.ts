import type { StoreName } from '../../shared/stores/store.ts';

export class PrerequisiteError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PrerequisiteError';
  }
}

export interface StackContext {
  /** Absolute path of the project (where node_modules and scripts/ live). */
  projectRoot: string;
  /** Absolute path of the data directory (`.data` by default). */
  dataDir: string;
  /** Whether missing system packages may be installed with apt-get. */
  autoInstall: boolean;
  log: (message: string) => void;
}

export interface StartedService {
  pid: number;
  url: string;
  user?: string;
  password?: string;
}

/** One real server the local stack can run as a plain process. */
export interface LocalService {
  name: StoreName;
  /** The variable that, when set, means "use that server, start nothing". */
  envVar: 'REDIS_URL' | 'DATABASE_URL' | 'CHROMA_URL' | 'NEO4J_URI';
  /** Checks (and where allowed, installs) what the server needs; throws PrerequisiteError naming the fix. */
  prepare(ctx: StackContext): Promise<void>;
  start(ctx: StackContext, port: number): Promise<StartedService>;
  /** The signal that asks the server for a clean, fast shutdown. */
  stopSignal: NodeJS.Signals;
  /** How long a cold start may take before it is reported as failed. */
  startTimeoutMs: number;
}
