import type { ChildProcess } from 'node:child_process';

/**
 * One thing `npm start` keeps running: the API or worker process, or a store the local stack started.
 * `start` brings it up and says how it ends; `stop` ends it on purpose (Ctrl-C).
 */
export interface Unit {
  name: string;
  start(): Promise<Running>;
}

export interface Running {
  /** Its process id, for messages. */
  pid: number | undefined;
  /** Resolves when it ends, with why ("code 1", "SIGKILL", "pid 4242 is gone") and the last error it printed, if any. */
  ended: Promise<{ how: string; lastError: string | undefined }>;
  stop(): Promise<void>;
}

export interface SupervisorPolicy {
  /** This many unexpected ends within `windowMs` is a crash loop: the supervisor stops everything. */
  maxCrashes: number;
  windowMs: number;
  /** Restart delays: `initialBackoffMs`, doubling per crash still in the window, at most `maxBackoffMs`. */
  initialBackoffMs: number;
  maxBackoffMs: number;
}

export const DEFAULT_POLICY: SupervisorPolicy = { maxCrashes: 5, windowMs: 60_000, initialBackoffMs: 1000, maxBackoffMs: 30_000 };

export class CrashLoopError extends Error {
  constructor(
    readonly unit: string,
    message: string,
  ) {
    super(message);
    this.name = 'CrashLoopError';
  }
}

/**
 * Keeps units running: one that ends unexpectedly is started again after a backoff, and each end and
 * restart is one line (`say`); the other units are not touched, so the stores and the other process go on
 * serving meanwhile. A unit that ends `maxCrashes` times within `windowMs` is a crash loop: `done`
 * resolves with a CrashLoopError naming it and its last error, and the caller stops everything.
 * `stop()` ends the units in the order they were added, each after the previous one has ended.
 */
export class Supervisor {
  private readonly running = new Map<string, Running>();
  private readonly crashes = new Map<string, number[]>();
  private stopping = false;
  private readonly timers = new Set<NodeJS.Timeout>();
  private resolveDone!: (err: CrashLoopError) => void;
  /** Resolves only on a crash loop. */
  readonly done = new Promise<CrashLoopError>((resolve) => (this.resolveDone = resolve));

  constructor(
    private readonly units: Unit[],
    private readonly say: (line: string) => void,
    private readonly policy: SupervisorPolicy = DEFAULT_POLICY,
  ) {}

  /** Starts every unit, in order. */
  async start(): Promise<void> {
    for (const unit of this.units) {
      await this.launch(unit);
      this.say(`${unit.name} running (pid ${this.running.get(unit.name)?.pid ?? '?'})`);
    }
  }

  pid(name: string): number | undefined {
    return this.running.get(name)?.pid;
  }

  private async launch(unit: Unit): Promise<void> {
    if (this.stopping) return;
    const running = await unit.start();
    this.running.set(unit.name, running);
    void running.ended.then((end) => {
      if (this.stopping || this.running.get(unit.name) !== running) return;
      this.running.delete(unit.name);
      this.crashed(unit, end);
    });
  }

  private crashed(unit: Unit, end: { how: string; lastError: string | undefined }): void {
    const now = Date.now();
    const recent = [...(this.crashes.get(unit.name) ?? []), now].filter((t) => now - t < this.policy.windowMs);
    this.crashes.set(unit.name, recent);
    const last = end.lastError ? `; last error: ${end.lastError}` : '';
    if (recent.length >= this.policy.maxCrashes) {
      this.resolveDone(
        new CrashLoopError(
          unit.name,
          `${unit.name} ended ${recent.length} times within ${Math.round(this.policy.windowMs / 1000)} s (last: ${end.how})${last}; not restarting it`,
        ),
      );
      return;
    }
    const delay = Math.min(this.policy.initialBackoffMs * 2 ** (recent.length - 1), this.policy.maxBackoffMs);
    this.say(`${unit.name} ended unexpectedly (${end.how})${last}; restarting it in ${(delay / 1000).toFixed(1)} s (${recent.length} of ${this.policy.maxCrashes} within ${Math.round(this.policy.windowMs / 1000)} s stops everything)`);
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      this.launch(unit).then(
        () => this.say(`${unit.name} restarted (pid ${this.running.get(unit.name)?.pid ?? '?'})`),
        (err: unknown) => this.crashed(unit, { how: 'could not be started', lastError: err instanceof Error ? err.message : String(err) }),
      );
    }, delay);
    this.timers.add(timer);
  }

  /** Ends every unit in order (no restarts from now on); idempotent. */
  async stop(): Promise<void> {
    this.stopping = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    for (const unit of this.units) {
      const running = this.running.get(unit.name);
      this.running.delete(unit.name);
      await running?.stop();
    }
  }
}

/**
 * A child process as a unit's running instance. Its stderr is passed through and its last lines kept,
 * so a crash can be reported with the error it printed; stdout stays the terminal's (pretty logs on a TTY).
 */
export function childProcessRunning(child: ChildProcess, stopTimeoutMs: number): Running {
  let tail: string[] = [];
  child.stderr?.on('data', (d: Buffer) => {
    process.stderr.write(d);
    tail = [...tail, ...d.toString().split('\n').filter((l) => l.trim() !== '')].slice(-20);
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve({ code: child.exitCode, signal: child.signalCode });
    else child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  const lastError = () => {
    // The first line of the last error printed (a stack trace's message), else the last line.
    const errorLine = [...tail].reverse().find((l) => /error|fail|cannot|refused|EADDRINUSE/i.test(l) && !/^\s+at /.test(l));
    return (errorLine ?? tail.at(-1))?.trim().slice(0, 500);
  };
  return {
    pid: child.pid,
    ended: exited.then(({ code, signal }) => ({ how: signal ? `killed by ${signal}` : `exit code ${code}`, lastError: lastError() })),
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const timer = setTimeout(() => child.kill('SIGKILL'), stopTimeoutMs);
      child.kill('SIGTERM');
      await exited;
      clearTimeout(timer);
    },
  };
}
