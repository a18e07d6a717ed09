import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, parseEnv } from '../../shared/config/config.ts';

const urls = {
  REDIS_URL: 'redis://127.0.0.1:1',
  DATABASE_URL: 'postgres://u:p@127.0.0.1:2/db',
  CHROMA_URL: 'http://127.0.0.1:3',
  NEO4J_URI: 'bolt://127.0.0.1:4',
  NEO4J_PASSWORD: 'secret',
};

function emptyDataDir(): string {
  return mkdtempSync(path.join(tmpdir(), 'pk-config-'));
}

describe('config', () => {
  it('applies documented defaults', () => {
    const env = parseEnv({});
    expect(env.API_HOST).toBe('127.0.0.1');
    expect(env.API_PORT).toBe(3737);
    expect(env.QUEUE_PREFIX).toBe('pkmcp');
    expect(env.DATABASE_SCHEMA).toBe('public');
    expect(env.LOG_LEVEL).toBe('info');
  });

  it('lists every invalid variable at once, in plain words', () => {
    let error: unknown;
    try {
      parseEnv({ API_PORT: 'eighty', LOG_LEVEL: 'loud', DATABASE_SCHEMA: 'Bad-Name', REDIS_URL: 'not a url' });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const problems = (error as ConfigError).problems.join('\n');
    for (const name of ['API_PORT', 'LOG_LEVEL', 'DATABASE_SCHEMA', 'REDIS_URL']) expect(problems).toContain(name);
    expect((error as ConfigError).problems).toHaveLength(4);
  });

  it('uses URLs from the environment as they are', () => {
    const config = loadConfig({ ...urls, PK_DATA_DIR: emptyDataDir() });
    expect(config.redisUrl).toBe(urls.REDIS_URL);
    expect(config.databaseUrl).toBe(urls.DATABASE_URL);
    expect(config.neo4jPassword).toBe('secret');
  });

  it('falls back to the URLs the local stack recorded, environment first', () => {
    const dataDir = emptyDataDir();
    writeFileSync(
      path.join(dataDir, 'stack.json'),
      JSON.stringify({
        services: {
          redis: { url: 'redis://127.0.0.1:6390', managed: true },
          postgres: { url: 'postgres://a:b@127.0.0.1:5440/pkmcp', managed: true },
          chroma: { url: 'http://127.0.0.1:8010', managed: true },
          neo4j: { url: 'bolt://127.0.0.1:7690', managed: true, user: 'neo4j', password: 'fromstack' },
        },
      }),
    );
    const config = loadConfig({ PK_DATA_DIR: dataDir, REDIS_URL: 'redis://10.0.0.1:6379' });
    expect(config.redisUrl).toBe('redis://10.0.0.1:6379');
    expect(config.databaseUrl).toBe('postgres://a:b@127.0.0.1:5440/pkmcp');
    expect(config.neo4jUri).toBe('bolt://127.0.0.1:7690');
    expect(config.neo4jPassword).toBe('fromstack');
  });

  it('says how to get a store when neither the environment nor the stack has one', () => {
    expect(() => loadConfig({ PK_DATA_DIR: emptyDataDir() })).toThrowError(/REDIS_URL is not set.*stack up/);
    try {
      loadConfig({ PK_DATA_DIR: emptyDataDir() });
    } catch (err) {
      expect((err as ConfigError).problems).toHaveLength(4);
    }
  });

  it('requires NEO4J_PASSWORD with an external NEO4J_URI', () => {
    const { NEO4J_PASSWORD: _omit, ...rest } = urls;
    expect(() => loadConfig({ ...rest, PK_DATA_DIR: emptyDataDir() })).toThrowError(/NEO4J_PASSWORD/);
  });
});

describe('.env.example', () => {
  it('documents exactly the variables the schema reads, and its values parse', async () => {
    const { readFileSync } = await import('node:fs');
    const { envSchema } = await import('../../shared/config/config.ts');
    const text = readFileSync(new URL('../../.env.example', import.meta.url), 'utf8');
    const entries = Object.fromEntries(
      text
        .split('\n')
        .filter((l) => /^[A-Z0-9_]+=/.test(l))
        .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
    );
    expect(Object.keys(entries).sort()).toEqual(Object.keys(envSchema.shape).sort());
    expect(() => parseEnv(entries)).not.toThrow();
  });
});
