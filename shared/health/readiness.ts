import { errorMessage, withTimeout } from '../errors.ts';
import type { StoreConnection, StoreName } from '../stores/store.ts';

export type StoreStatus = { status: 'ok'; latencyMs: number } | { status: 'error'; error: string; latencyMs: number };

export interface ReadinessReport {
  status: 'ok' | 'unavailable';
  stores: Record<string, StoreStatus>;
}

/** Pings every store at once, each bounded by `timeoutMs`, and reports each one's state. */
export async function checkReadiness(
  stores: Partial<Record<StoreName, StoreConnection>>,
  timeoutMs: number,
): Promise<ReadinessReport> {
  const entries = await Promise.all(
    Object.entries(stores).map(async ([name, store]): Promise<[string, StoreStatus]> => {
      const started = performance.now();
      const latencyMs = () => Math.round((performance.now() - started) * 10) / 10;
      try {
        await withTimeout(store!.ping(), timeoutMs, name);
        return [name, { status: 'ok', latencyMs: latencyMs() }];
      } catch (err) {
        return [name, { status: 'error', error: errorMessage(err), latencyMs: latencyMs() }];
      }
    }),
  );
  const report = Object.fromEntries(entries);
  const ok = entries.every(([, s]) => s.status === 'ok');
  return { status: ok ? 'ok' : 'unavailable', stores: report };
}
