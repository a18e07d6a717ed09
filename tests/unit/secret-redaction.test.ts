import { describe, expect, it } from 'vitest';
import { redactEach, redactSecrets } from '../../shared/redaction/secret-redaction.ts';
import { PLANTED, PLANTED_SOURCE } from '../helpers/planted-secrets.ts';


describe('secret redaction', () => {
  it('leaves nothing behind per file in the process (no performance marks pile up in a long-running worker)', async () => {
    const before = performance.getEntriesByType('mark').length;
    for (let i = 0; i < 50; i++) await redactSecrets(`const password = "${'x'.repeat(i)}";\nexport const n${i} = ${i};\n`);
    expect(performance.getEntriesByType('mark').length).toBe(before);
  });

  it('replaces every planted secret by a marker naming its rule, and keeps the line count', async () => {
    const r = await redactSecrets(PLANTED_SOURCE);
    for (const value of Object.values(PLANTED)) expect(r.text).not.toContain(value);
    expect(r.text.split('\n')).toHaveLength(PLANTED_SOURCE.split('\n').length);
    expect(r.text).toContain('github: "[REDACTED:github]",');
    expect(r.text).toContain('const apiToken = "[REDACTED:generic-api-key]";');
    expect(r.byRule).toMatchObject({ aws: 1, github: 1, slack: 1, 'database-connection-string': 1, privatekey: 1, 'generic-api-key': 2 });
    expect(r.total).toBe(7);
    // Code around the secrets is left as it was.
    expect(r.text).toContain('const tokenCount = nextToken(attempt);');
    expect(r.text.split('\n')[10]).toBe('const apiToken = "[REDACTED:generic-api-key]";');
  });

  it('leaves code that only names secrets alone', async () => {
    const code = [
      'const password = process.env.DB_PASSWORD;',
      'neo4jPassword: e.NEO4J_PASSWORD,',
      "const file = config.secrets.files.databasePassword ?? 'DATABASE_PASSWORD_FILE';",
      'token = tokenizer.nextToken();',
      'ADMIN_TOKEN_FILE=/run/secrets/pk_admin',
      'const apiKey = "your-api-key-here";',
    ].join('\n');
    const r = await redactSecrets(code);
    expect(r.total).toBe(0);
    expect(r.text).toBe(code);
  });

  it('redacts many texts in one pass with the same result as one at a time', async () => {
    const texts = ['nothing here', `const t = "${PLANTED.github}";`, 'x', `key = "${PLANTED.generic}"`];
    const many = await redactEach(texts);
    const one = await Promise.all(texts.map((t) => redactSecrets(t)));
    expect(many.texts).toEqual(one.map((r) => r.text));
    expect(many.total).toBe(2);
  });
});
