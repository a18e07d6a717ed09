import type { Logger } from './logger.ts';

export interface ShutdownStep {
  name: string;
  run: () => Promise<unknown>;
}

/**
 * Runs the steps in order (HTTP → workers → queues → stores → Redis), each
 * bounded by `timeoutMs`, once: a second signal while shutting down waits for
 * the first shutdown instead of starting another.
 */
export function createShutdown(logger: Logger, steps: ShutdownStep[], timeoutMs: number): () => Promise<void> {
  let running: Promise<void> | undefined;
  return () =>
    (running ??= (async () => {
      for (const step of steps) {
        let timer: NodeJS.Timeout | undefined;
        try {
          await Promise.race([
            step.run(),
            new Promise((_, reject) => {
              timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms`)), timeoutMs);
            }),
          ]);
          logger.debug({ step: step.name }, 'shutdown step done');
        } catch (err) {
          logger.warn({ step: step.name, err: (err as Error).message }, 'shutdown step failed');
        } finally {
          clearTimeout(timer);
        }
      }
    })());
}

/** Wires SIGINT/SIGTERM to `shutdown` and exits when it is done. */
export function onSignals(logger: Logger, shutdown: () => Promise<void>): void {
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      logger.info({ signal }, 'shutting down');
      void shutdown().then(() => process.exit(0));
    });
  }
}
