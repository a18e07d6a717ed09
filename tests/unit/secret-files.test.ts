import { createHash, createHmac, pbkdf2Sync } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../shared/config/config.ts';
import { FileSecret, fingerprint, generateSecret, pendingPath, writeSecretFile } from '../../shared/secrets/secret-file.ts';
import { scramVerifier } from '../../shared/secrets/secret-rotation.service.ts';

const dir = () => mkdtempSync(path.join(tmpdir(), 'pk-secret-unit-'));
const urls = {
  REDIS_URL: 'redis://app@127.0.0.1:1',
  DATABASE_URL: 'postgres://app:in-url@127.0.0.1:2/db',
  CHROMA_URL: 'http://127.0.0.1:3',
  NEO4J_URI: 'bolt://127.0.0.1:4',
};

describe('secret files', () => {
  it('are replaced whole, mode 0600, with no temp file left behind', async () => {
    const d = dir();
    const file = path.join(d, 'sub', 'database-password');
    await writeSecretFile(file, 'first');
    await writeSecretFile(file, 'second');
    expect(readFileSync(file, 'utf8')).toBe('second\n');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readdirSync(path.dirname(file))).toEqual(['database-password']);
  });

  it('a FileSecret keeps its value until told, and after a refusal takes the file, then the pending value', async () => {
    const d = dir();
    const file = path.join(d, 'neo4j-password');
    writeFileSync(file, 'old\n');
    const secret = new FileSecret('neo4j-password', file);
    expect(secret.value).toBe('old');
    await writeSecretFile(file, 'new');
    expect(secret.value).toBe('old');
    expect(secret.peek()).toBe('new');
    // The store refused 'old' and the file has something else: take it.
    secret.authFailed('old');
    expect(secret.value).toBe('new');
    // Between a store's change and the file's, the file still holds the refused value: the pending one is next.
    await writeSecretFile(pendingPath(file), 'newer');
    secret.authFailed('new');
    expect(secret.value).toBe('newer');
    // Refused while the pending file exists: a lockout, not a wrong value, so it is kept.
    secret.authFailed('newer');
    expect(secret.value).toBe('newer');
    // Refused once a rollback removed the pending file: back to the file.
    rmSync(pendingPath(file));
    secret.authFailed('newer');
    expect(secret.value).toBe('new');
    expect(secret.fingerprint).toBe(fingerprint('new'));
    expect(() => new FileSecret('x', path.join(d, 'missing'))).toThrow(/missing or empty/);
  });

  it('generated values are random, long and safe in a URL or a header', () => {
    const values = new Set(Array.from({ length: 50 }, generateSecret));
    expect(values.size).toBe(50);
    for (const v of values) expect(v).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });
});

describe('SCRAM verifier', () => {
  it("has Postgres's format and the keys RFC 5802 derives from the password", () => {
    const verifier = scramVerifier('pencil', 4096);
    const match = /^SCRAM-SHA-256\$4096:([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+):([A-Za-z0-9+/=]+)$/.exec(verifier);
    expect(match).not.toBeNull();
    const salted = pbkdf2Sync('pencil', Buffer.from(match![1]!, 'base64'), 4096, 32, 'sha256');
    const storedKey = createHash('sha256').update(createHmac('sha256', salted).update('Client Key').digest()).digest('base64');
    expect(match![2]).toBe(storedKey);
    expect(match![3]).toBe(createHmac('sha256', salted).update('Server Key').digest('base64'));
    expect(scramVerifier('pencil')).not.toBe(verifier);
  });
});

describe('*_FILE configuration', () => {
  it('reads each file, which wins over the URL or the variable', () => {
    const d = dir();
    const write = (name: string, value: string) => (writeFileSync(path.join(d, name), value), path.join(d, name));
    const config = loadConfig({
      ...urls,
      PK_DATA_DIR: d,
      NEO4J_PASSWORD: 'from-variable',
      WEBHOOK_SECRET: 'from-variable',
      DATABASE_PASSWORD_FILE: write('db', 'p@ss/word\n'),
      REDIS_PASSWORD_FILE: write('redis', 'r3dis'),
      NEO4J_PASSWORD_FILE: write('neo4j', 'neo\n'),
      WEBHOOK_SECRET_FILE: write('hook', 'hook'),
    });
    expect(new URL(config.databaseUrl).password).toBe(encodeURIComponent('p@ss/word'));
    expect(decodeURIComponent(new URL(config.databaseUrl).password)).toBe('p@ss/word');
    expect(new URL(config.redisUrl).username).toBe('app');
    expect(new URL(config.redisUrl).password).toBe('r3dis');
    expect(config.neo4jPassword).toBe('neo');
    expect(config.webhookSecret).toBe('hook');
    expect(config.secrets).toMatchObject({
      dir: path.join(d, 'secrets'),
      files: { databasePassword: path.join(d, 'db'), redisPassword: path.join(d, 'redis'), neo4jPassword: path.join(d, 'neo4j'), webhookSecret: path.join(d, 'hook') },
      webhookGraceMs: 7 * 86_400_000,
      tokenGraceMs: 86_400_000,
    });
  });

  it('lists a missing or empty file, and bad grace periods, with the variable that names them', () => {
    const d = dir();
    writeFileSync(path.join(d, 'empty'), '\n');
    let error: unknown;
    try {
      loadConfig({ ...urls, PK_DATA_DIR: d, NEO4J_PASSWORD: 'x', DATABASE_PASSWORD_FILE: path.join(d, 'nope'), REDIS_PASSWORD_FILE: path.join(d, 'empty') });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).problems).toEqual([
      expect.stringMatching(/^DATABASE_PASSWORD_FILE .*nope: ENOENT/),
      `REDIS_PASSWORD_FILE ${path.join(d, 'empty')} is empty`,
    ]);
    expect(() => loadConfig({ ...urls, PK_DATA_DIR: d, NEO4J_PASSWORD: 'x', WEBHOOK_SECRET_GRACE: '1 day' })).toThrow(/WEBHOOK_SECRET_GRACE: must be a whole number and a unit/);
  });
});
