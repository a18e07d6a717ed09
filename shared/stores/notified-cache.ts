import type { PostgresConnection } from './postgres.connection.ts';

/**
 * Values derived from Postgres tables, cached only while notifications are
 * known to arrive. The tables' triggers NOTIFY `channel` on commit with their
 * schema as payload; every such notification (or a lost listener) empties
 * the cache, so a load still in flight then is not kept either. So a cached value is never older than the last committed
 * change this process could have been told about, and while the listener is
 * down nothing is cached at all.
 */
export function createNotifiedCache<K, V>(pg: PostgresConnection, channel: string, options: { maxEntries?: number } = {}) {
  const maxEntries = options.maxEntries ?? 1000;
  const entries = new Map<K, Promise<V>>();
  let listening = false;
  let subscribed = false;

  const invalidate = () => entries.clear();

  return {
    /** The cached value for `key`, or what `load` gives (kept only if nothing changed meanwhile). */
    get(key: K, load: () => Promise<V>): Promise<V> {
      if (!subscribed) {
        subscribed = true;
        pg.listen(channel, {
          message: (schema) => schema === pg.schema && invalidate(),
          state: (on) => {
            listening = on;
            invalidate();
          },
        });
      }
      if (!listening) return load();
      const hit = entries.get(key);
      if (hit) return hit;
      const value = load();
      entries.set(key, value);
      if (entries.size > maxEntries) entries.delete(entries.keys().next().value as K);
      value.then(
        () => undefined,
        () => entries.get(key) === value && entries.delete(key),
      );
      return value;
    },
    /** Drops one key (e.g. a load that found nothing, not worth keeping). */
    delete(key: K): void {
      entries.delete(key);
    },
    /** After a write through this process: read your own writes without waiting for the notification. */
    invalidate,
  };
}

export type NotifiedCache<K, V> = ReturnType<typeof createNotifiedCache<K, V>>;

const shared = new WeakMap<PostgresConnection, Map<string, NotifiedCache<unknown, unknown>>>();

/** One cache per connection and channel, shared by every object that reads or writes those tables. */
export function notifiedCache<K, V>(pg: PostgresConnection, channel: string, options?: { maxEntries?: number }): NotifiedCache<K, V> {
  let byChannel = shared.get(pg);
  if (!byChannel) shared.set(pg, (byChannel = new Map()));
  let cache = byChannel.get(channel);
  if (!cache) byChannel.set(channel, (cache = createNotifiedCache<unknown, unknown>(pg, channel, options)));
  return cache as NotifiedCache<K, V>;
}
