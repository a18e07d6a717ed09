import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../shared/config/config.ts';

const base = {
  REDIS_URL: 'redis://127.0.0.1:1',
  DATABASE_URL: 'postgres://u:p@127.0.0.1:2/db',
  CHROMA_URL: 'http://127.0.0.1:3',
  NEO4J_URI: 'bolt://127.0.0.1:4',
  NEO4J_PASSWORD: 'secret',
  PK_DATA_DIR: mkdtempSync(path.join(tmpdir(), 'pk-oidc-config-')),
};

function problemsOf(env: Record<string, string>): string[] {
  try {
    loadConfig({ ...base, ...env });
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
}

describe('OIDC and audit configuration', () => {
  it('is off without an issuer, with a year of audit retention', () => {
    const config = loadConfig(base);
    expect(config.oidc).toBeNull();
    expect(config.audit).toEqual({ retentionDays: 365 });
  });

  it('parses the issuer, audiences, skew and claim maps as documented', () => {
    const config = loadConfig({
      ...base,
      API_PORT: '8080',
      OIDC_ISSUER: 'https://login.example.com/realms/eng',
      OIDC_AUDIENCE: 'pk-mcp, pk-mcp-cli',
      OIDC_CLOCK_SKEW: '45s',
      OIDC_SCOPES_CLAIM: 'realm_access.roles',
      OIDC_SCOPE_MAP: 'pk-admins:admin,eng:write,eng:read,everyone:read',
      OIDC_INSTANCE_MAP: 'eng:work,everyone:public,pk-admins:*',
      OIDC_DEFAULT_INSTANCES: 'public',
      AUDIT_RETENTION_DAYS: '90',
    });
    expect(config.oidc).toMatchObject({
      issuer: 'https://login.example.com/realms/eng',
      audiences: ['pk-mcp', 'pk-mcp-cli'],
      clockSkewMs: 45_000,
      subjectClaim: 'sub',
      scopesClaim: 'realm_access.roles',
      scopeMap: { 'pk-admins': ['admin'], eng: ['write', 'read'], everyone: ['read'] },
      instancesClaim: 'groups',
      instanceMap: { eng: ['work'], everyone: ['public'], 'pk-admins': ['*'] },
      defaultScopes: [],
      defaultInstances: ['public'],
      jwksRefreshMs: 600_000,
      jwksMaxAgeMs: 86_400_000,
      resource: 'http://127.0.0.1:8080/mcp',
    });
    expect(config.oidc?.algorithms).not.toContain('HS256');
    expect(config.audit.retentionDays).toBe(90);
  });

  it('refuses unsafe or incomplete settings, naming each', () => {
    expect(problemsOf({ OIDC_ISSUER: 'http://login.example.com', OIDC_AUDIENCE: 'x' })).toEqual(['OIDC_ISSUER must be an https URL (http only on localhost), not http://login.example.com']);
    expect(problemsOf({ OIDC_ISSUER: 'https://login.example.com' })).toEqual([
      'OIDC_AUDIENCE is required with OIDC_ISSUER: the client id or API identifier your tokens are issued for',
    ]);
    expect(problemsOf({ OIDC_ISSUER: 'https://login.example.com', OIDC_AUDIENCE: 'x', OIDC_ALGORITHMS: 'RS256,HS256' }).join('\n')).toContain('OIDC_ALGORITHMS');
    expect(problemsOf({ OIDC_ISSUER: 'https://login.example.com', OIDC_AUDIENCE: 'x', OIDC_ALGORITHMS: 'none' }).join('\n')).toContain('only asymmetric JWS algorithms');
    expect(problemsOf({ OIDC_ISSUER: 'https://login.example.com', OIDC_AUDIENCE: 'x', OIDC_CLOCK_SKEW: '10m' }).join('\n')).toContain('at most 5m');
    expect(problemsOf({ OIDC_ISSUER: 'https://login.example.com', OIDC_AUDIENCE: 'x', OIDC_INSTANCE_MAP: 'eng:nowhere,bad', OIDC_SCOPE_MAP: 'eng:root' })).toEqual([
      "OIDC_SCOPE_MAP: unknown scope 'root' (read, write or admin)",
      "OIDC_INSTANCE_MAP: unknown instance 'nowhere' (INSTANCES is private,work,public, or '*')",
      "OIDC_INSTANCE_MAP: 'bad' is not claim-value:target (e.g. pk-admins:admin)",
    ]);
    expect(problemsOf({ OIDC_AUDIENCE: 'x' })).toEqual(['OIDC_AUDIENCE set without OIDC_ISSUER: set the issuer too, or remove them']);
    expect(problemsOf({ AUDIT_RETENTION_DAYS: '-1' }).join('\n')).toContain('AUDIT_RETENTION_DAYS');
  });
});
