import type { Command } from 'commander';
import type { Platform } from '../../shared/platform.ts';
import { createTokenService, parseDuration, type TokenRecord, type TokenService } from '../../shared/auth/token.service.ts';
import { list, printJson, withPlatform } from './cli-support.ts';

/** The token service over the platform's Postgres (which `withPlatform` has migrated). */
async function withTokens<T>(fn: (tokens: TokenService) => Promise<T>): Promise<T> {
  return withPlatform(async (platform: Platform) => fn(createTokenService(platform.stores.postgres, { instances: platform.config.instances })), ['postgres']);
}

const date = (d: Date | null) => (d ? d.toISOString().replace(/\.\d{3}Z$/, 'Z') : '-');

function describe(record: TokenRecord): string {
  const expiry = record.expiresAt ? `expires ${date(record.expiresAt)}` : 'no expiry';
  return `scopes ${record.scopes.join(',')}; instances ${record.instances.join(',')}; ${expiry}`;
}

function printIssued(verb: string, token: string, record: TokenRecord): void {
  // Only the value goes to stdout, so `TOKEN=$(npx pk-mcp token create …)` captures just it.
  console.error(`${verb} token '${record.name}' (${describe(record)})`);
  console.log(token);
  console.error('warning: this value is shown only once and cannot be recovered (only its hash is stored); keep it now');
}

export function registerTokenCommands(program: Command): void {
  const token = program.command('token').description('create, list, revoke and rotate API bearer tokens');

  token
    .command('create')
    .description('create a token and print its value (once)')
    .requiredOption('--name <name>', 'name to refer to it by (1-64 letters, digits, . _ -)')
    .requiredOption('--scopes <scopes>', 'read, write and/or admin (comma-separated; admin ⊇ write ⊇ read)', list)
    .requiredOption('--instances <instances>', "instances it may use (comma-separated), or '*' for all", list)
    .option('--expires <duration>', 'lifetime, e.g. 90m, 24h, 30d (default: never expires)')
    .option('--rotate-every <duration>', 'mark it for rotation: `secrets rotate` gives it a new value this often, written to the secrets folder as token-<name> (e.g. 30d)')
    .action(async (opts: { name: string; scopes: string[]; instances: string[]; expires?: string; rotateEvery?: string }) => {
      const expiresInMs = opts.expires === undefined ? undefined : parseDuration(opts.expires);
      const rotateEveryMs = opts.rotateEvery === undefined ? undefined : parseDuration(opts.rotateEvery);
      await withTokens(async (tokens) => {
        const issued = await tokens.create({ name: opts.name, scopes: opts.scopes, instances: opts.instances, expiresInMs, rotateEveryMs, actor: 'cli' });
        printIssued('created', issued.token, issued.record);
      });
    });

  token
    .command('list')
    .description('list tokens with scopes, instances and usage (never their values)')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }) => {
      await withTokens(async (tokens) => {
        const records = await tokens.list();
        if (opts.json) return printJson(records);
        if (records.length === 0) {
          return console.log("no tokens yet: create one with `pk-mcp token create --name admin --scopes admin --instances '*'`");
        }
        const header = ['NAME', 'STATUS', 'SCOPES', 'INSTANCES', 'CREATED', 'EXPIRES', 'LAST USED'];
        const rows = records.map((r) => [
          r.name,
          r.status,
          r.scopes.join(','),
          r.instances.join(','),
          date(r.createdAt),
          date(r.expiresAt),
          date(r.lastUsedAt),
        ]);
        const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
        const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
        console.log(line(header));
        records.forEach((r, i) => {
          console.log(line(rows[i]!));
          for (const p of r.previousValues) {
            console.log(`  previous value still accepted until ${date(p.validUntil)} (last used ${date(p.lastUsedAt)})`);
          }
        });
      });
    });

  token
    .command('revoke')
    .description('revoke a token at once (with any previous value still in its grace period)')
    .requiredOption('--name <name>', 'token name')
    .action(async (opts: { name: string }) => {
      await withTokens(async (tokens) => {
        const record = await tokens.revoke(opts.name, { actor: 'cli' });
        console.log(`revoked token '${record.name}'`);
      });
    });

  token
    .command('rotate')
    .description('issue a new value for a token; the old one stays valid for --grace')
    .requiredOption('--name <name>', 'token name')
    .option('--grace <duration>', 'how long the old value keeps working, e.g. 24h (default: stops at once)')
    .option('--expires <duration>', "lifetime of the new value, e.g. 30d (default: the old value's expiry)")
    .action(async (opts: { name: string; grace?: string; expires?: string }) => {
      const graceMs = opts.grace === undefined ? 0 : parseDuration(opts.grace);
      const expiresInMs = opts.expires === undefined ? undefined : parseDuration(opts.expires);
      await withTokens(async (tokens) => {
        const issued = await tokens.rotate(opts.name, { graceMs, expiresInMs, actor: 'cli' });
        printIssued('rotated', issued.token, issued.record);
        const previous = issued.record.previousValues.at(-1);
        console.error(previous ? `the old value works until ${date(previous.validUntil)}` : 'the old value no longer works');
      });
    });
}
