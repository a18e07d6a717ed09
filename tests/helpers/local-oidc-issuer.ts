import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';

/**
 * A local OpenID Connect issuer for tests: its keys are made here, its discovery document and key set
 * (JWKS) are served over HTTP on loopback, and the test changes what it publishes (key rotation) or takes
 * it down (connections cut: the identity provider unreachable).
 */

export interface IssuerKey {
  kid: string;
  alg: 'RS256' | 'ES256';
  privateKey: CryptoKey;
  publicJwk: JWK;
}

export async function makeKey(kid: string, alg: IssuerKey['alg'] = 'RS256'): Promise<IssuerKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  return { kid, alg, privateKey, publicJwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' } };
}

export interface SignOptions {
  key?: IssuerKey;
  /** The kid in the header (default: the key's own; null for none). */
  kid?: string | null;
}

export interface LocalIssuer {
  url: string;
  /** The keys in the JWKS now. */
  published: IssuerKey[];
  /** 'up' serves; 'down' cuts every connection; 'error' answers 500. */
  mode: 'up' | 'down' | 'error';
  hits: { discovery: number; jwks: number };
  /** A JWT with iss, aud 'pk-mcp', sub 'alice', iat and exp (+5 min) unless `claims` says otherwise (undefined removes one). */
  sign(claims?: Record<string, unknown>, options?: SignOptions): Promise<string>;
  close(): Promise<void>;
}

export async function startLocalIssuer(initial: IssuerKey[], audience = 'pk-mcp'): Promise<LocalIssuer> {
  const issuer: LocalIssuer = {
    url: '',
    published: [...initial],
    mode: 'up',
    hits: { discovery: 0, jwks: 0 },
    async sign(claims = {}, options = {}) {
      const key = options.key ?? issuer.published[0]!;
      const now = Math.floor(Date.now() / 1000);
      const payload = { iss: issuer.url, aud: audience, sub: 'alice', iat: now, exp: now + 300, ...claims };
      const kid = options.kid === undefined ? key.kid : options.kid;
      return new SignJWT(payload).setProtectedHeader({ alg: key.alg, typ: 'JWT', ...(kid === null ? {} : { kid }) }).sign(key.privateKey);
    },
    close: async () => undefined,
  };
  const server = http.createServer((req, res) => {
    if (issuer.mode === 'down') return req.socket.destroy();
    if (issuer.mode === 'error') return res.writeHead(500).end('internal error');
    if (req.url === '/.well-known/openid-configuration') {
      issuer.hits.discovery++;
      res.writeHead(200, { 'content-type': 'application/json' });
      return res.end(JSON.stringify({ issuer: issuer.url, jwks_uri: `${issuer.url}/jwks`, id_token_signing_alg_values_supported: ['RS256', 'ES256'] }));
    }
    if (req.url === '/jwks') {
      issuer.hits.jwks++;
      res.writeHead(200, { 'content-type': 'application/json' });
      return res.end(JSON.stringify({ keys: issuer.published.map((k) => k.publicJwk) }));
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  issuer.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  issuer.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return issuer;
}

/** base64url of JSON, for hand-made (unsigned or forged) JWTs. */
export const b64json = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
