import { describe, expect, it } from 'vitest';
import { createShutdown } from '../../shared/shutdown.ts';
import { withTimeout } from '../../shared/errors.ts';
import { silentLogger } from '../helpers/context.ts';

describe('shutdown', () => {
  it('runs steps in order, once, however often it is called', async () => {
    const calls: string[] = [];
    const step = (name: string) => ({ name, run: async () => void calls.push(name) });
    const shutdown = createShutdown(silentLogger, [step('http'), step('workers'), step('stores')], 1000);
    await Promise.all([shutdown(), shutdown()]);
    await shutdown();
    expect(calls).toEqual(['http', 'workers', 'stores']);
  });

  it('goes on past a step that fails or hangs', async () => {
    const calls: string[] = [];
    const shutdown = createShutdown(
      silentLogger,
      [
        { name: 'broken', run: async () => { throw new Error('boom'); } },
        { name: 'hangs', run: () => new Promise(() => undefined) },
        { name: 'stores', run: async () => void calls.push('stores') },
      ],
      50,
    );
    await shutdown();
    expect(calls).toEqual(['stores']);
  });

  it('withTimeout names what did not answer', async () => {
    await expect(withTimeout(new Promise(() => undefined), 20, 'redis')).rejects.toThrow('redis did not answer within 20 ms');
    await expect(withTimeout(Promise.resolve(7), 20, 'x')).resolves.toBe(7);
  });
});
