import { createHash } from 'node:crypto';
import { createLocalJWKSet, decodeProtectedHeader, errors, jwtVerify, type JSONWebKeySet, type JWTPayload } from 'jose';
import type { OidcConfig } from '../config/config.ts';
import { AppError, errorMessage } from '../errors.ts';
import type { Logger } from '../logger.ts';
import { ALL_INSTANCES, SCOPES, type Principal, type Scope } from './token.service.ts';

/**
 * JWTs from an OpenID Connect issuer, accepted beside the API tokens. The
 * issuer's discovery document names its key set (JWKS); the keys are fetched
 * and kept here: fetched again every `jwksRefreshMs` (in the background while
 * the cached keys still serve), and sooner when a JWT names a key id the set
 * lacks (a key rotation), at most once per cooldown so forged key ids cannot
 * make every request a fetch. When the issuer cannot be reached, the keys
 * already fetched keep working for `jwksMaxAgeMs`; after that JWT callers get
 * a 503 naming the problem, while API tokens are not affected at all.
 * Signatures, `iss`, `aud`, `exp` and `nbf` are checked by jose.
 */

/** Larger than any JWT an identity provider issues with a handful of groups; Node refuses headers over 16 KiB anyway. */
export const MAX_JWT_BYTES = 8192;
/** The least time between two fetches of the key set prompted by unknown key ids or failures. */
const REFETCH_COOLDOWN_MS = 30_000;
/** A key set or discovery document larger than this is not one. */
const MAX_DOCUMENT_BYTES = 1024 * 1024;
const MAX_SUBJECT_CHARS = 256;

/** A claim as a refusal quotes it: the caller chose it, so it is cut short (it lands in headers, logs and the audit trail). */
const clip = (value: unknown) => {
  const text = JSON.stringify(value ?? null);
  return text.length > 120 ? `${text.slice(0, 117)}...` : text;
};

/** Three base64url parts: what a compact JWS looks like (an API token never does). */
const JWT_SHAPE = /^[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*$/;

export function looksLikeJwt(value: string): boolean {
  return value.length > 0 && JWT_SHAPE.test(value);
}

export const invalidJwt = (reason: string) => new AppError(401, 'invalid_token', reason);
const unavailable = (reason: string) => new AppError(503, 'identity_provider_unavailable', reason);

export interface OidcVerifierOptions {
  /** The configured instances: '*' in a mapping expands to these. */
  instances: string[];
  logger?: Logger;
  now?: () => Date;
  fetch?: typeof fetch;
}

export interface OidcVerifier {
  readonly issuer: string;
  /** The principal of a valid JWT; throws a 401 AppError (with the precise reason) or a 503 when the keys cannot be had. */
  verify(jwt: string): Promise<Principal>;
  /** The key set's state, for tests and logs. */
  keyState(): { fetchedAt: Date | null; kids: string[]; lastError: string | null };
}

interface KeySet {
  fetchedAt: number;
  kids: Set<string>;
  get: ReturnType<typeof createLocalJWKSet>;
}

/** What a claim holds at a dotted path (`realm_access.roles`), as a list of strings: OAuth's `scope` is space-separated. */
function claimAt(payload: JWTPayload, path: string): unknown {
  let value: unknown = payload;
  for (const part of path.split('.')) {
    if (value === null || typeof value !== 'object') return undefined;
    value = (value as Record<string, unknown>)[part];
  }
  return value;
}

export function claimValues(payload: JWTPayload, path: string): string[] {
  if (path === '') return [];
  const value = claimAt(payload, path);
  if (typeof value === 'string') return value.split(/\s+/).filter(Boolean);
  if (Array.isArray(value)) return value.filter((v): v is string => typeof v === 'string');
  return [];
}

/** A stable negative id for an OIDC subject: never a token's id (those are positive), the same across refreshed JWTs. */
function principalId(issuer: string, subject: string): number {
  const digest = createHash('sha256').update(`${issuer}\u0000${subject}`).digest();
  return -(digest.readUIntBE(0, 6) + 1);
}

export function createOidcVerifier(config: OidcConfig, options: OidcVerifierOptions): OidcVerifier {
  const clock = options.now ?? (() => new Date());
  const doFetch = options.fetch ?? fetch;
  const log = options.logger;
  const configured = options.instances;
  let keys: KeySet | null = null;
  let jwksUri: string | null = null;
  let inflight: Promise<KeySet> | null = null;
  let lastAttempt = 0;
  let lastError: string | null = null;

  async function getJson(url: string, what: string): Promise<unknown> {
    let response: Response;
    try {
      response = await doFetch(url, { headers: { accept: 'application/json' }, redirect: 'error', signal: AbortSignal.timeout(config.httpTimeoutMs) });
    } catch (err) {
      const cause = (err as { cause?: unknown }).cause;
      throw new Error(`${what} ${url} could not be fetched: ${errorMessage(cause ?? err)}`);
    }
    if (!response.ok) {
      await response.body?.cancel().catch(() => undefined);
      throw new Error(`${what} ${url} answered HTTP ${response.status}`);
    }
    const text = await response.text();
    if (text.length > MAX_DOCUMENT_BYTES) throw new Error(`${what} ${url} is larger than ${MAX_DOCUMENT_BYTES} bytes`);
    try {
      return JSON.parse(text);
    } catch {
      throw new Error(`${what} ${url} is not JSON`);
    }
  }

  function checkedUrl(value: unknown, what: string): string {
    if (typeof value !== 'string') throw new Error(`the discovery document has no ${what}`);
    const url = new URL(value);
    const loopback = ['localhost', '127.0.0.1', '[::1]'].includes(url.hostname);
    if (url.protocol !== 'https:' && !(url.protocol === 'http:' && loopback)) throw new Error(`the discovery document's ${what} ${value} is not https`);
    return url.toString();
  }

  async function fetchKeys(): Promise<KeySet> {
    const discoveryUrl = `${config.issuer.replace(/\/$/, '')}/.well-known/openid-configuration`;
    try {
      const doc = (await getJson(discoveryUrl, 'the discovery document')) as Record<string, unknown>;
      // OIDC Discovery §4.3: the document must name exactly the issuer it was fetched for.
      if (doc.issuer !== config.issuer) throw new Error(`the discovery document at ${discoveryUrl} names issuer ${JSON.stringify(doc.issuer)}, not ${config.issuer}`);
      jwksUri = checkedUrl(doc.jwks_uri, 'jwks_uri');
    } catch (err) {
      // A key set fetched before can be fetched again from where it was, while discovery is down.
      if (!jwksUri) throw err;
      log?.warn({ err: errorMessage(err) }, 'oidc discovery failed; using the jwks_uri found before');
    }
    const jwks = (await getJson(jwksUri, 'the key set (JWKS)')) as JSONWebKeySet;
    if (!jwks || !Array.isArray(jwks.keys)) throw new Error(`the key set (JWKS) at ${jwksUri} has no "keys" array`);
    return {
      fetchedAt: clock().getTime(),
      kids: new Set(jwks.keys.map((k) => k.kid).filter((k): k is string => typeof k === 'string')),
      get: createLocalJWKSet(jwks),
    };
  }

  /** One fetch at a time; the result replaces the cached set only when it succeeded. */
  function refresh(): Promise<KeySet> {
    inflight ??= (async () => {
      lastAttempt = clock().getTime();
      try {
        const fresh = await fetchKeys();
        if (lastError) log?.info({ issuer: config.issuer }, 'oidc key set fetched again');
        keys = fresh;
        lastError = null;
        return fresh;
      } catch (err) {
        const message = errorMessage(err);
        if (message !== lastError) log?.warn({ issuer: config.issuer, err: message }, 'oidc key set could not be fetched');
        lastError = message;
        throw err;
      } finally {
        inflight = null;
      }
    })();
    return inflight;
  }

  const coolingDown = () => clock().getTime() - lastAttempt < Math.min(REFETCH_COOLDOWN_MS, config.jwksRefreshMs);

  /** Keys that may verify a JWT naming `kid`: cached while fresh enough, fetched otherwise (see the file's comment). */
  async function keySetFor(kid: string | undefined): Promise<KeySet> {
    const now = clock().getTime();
    const cached = keys;
    const usable = cached !== null && now - cached.fetchedAt < config.jwksMaxAgeMs;
    const knows = cached !== null && (kid === undefined || cached.kids.has(kid));
    if (usable && knows) {
      // Stale but within its maximum age: serve now, fetch again behind the request.
      if (now - cached.fetchedAt >= config.jwksRefreshMs && !inflight && !coolingDown()) refresh().catch(() => undefined);
      return cached;
    }
    if (usable && !knows && coolingDown() && !inflight) {
      // Fetched moments ago and still without this key id: the key does not exist (or is forged).
      return cached;
    }
    if (!usable && coolingDown() && !inflight && lastError) {
      throw unavailable(keyProblem(cached));
    }
    try {
      return await refresh();
    } catch (err) {
      if (usable) {
        // The key id is new to us and the issuer is unreachable: we cannot tell a rotated key from a forged one.
        throw unavailable(`the JWT names key ${clip(kid)}, which the cached key set of ${config.issuer} lacks, and the key set cannot be fetched again: ${errorMessage(err)}`);
      }
      throw unavailable(keyProblem(cached));
    }
  }

  function keyProblem(cached: KeySet | null): string {
    const why = lastError ?? 'unknown error';
    return cached
      ? `the identity provider's keys (fetched ${new Date(cached.fetchedAt).toISOString()}) are older than OIDC_JWKS_MAX_AGE and cannot be fetched again: ${why}; API tokens still work`
      : `the identity provider's keys cannot be fetched: ${why}; API tokens still work`;
  }

  function scopesOf(payload: JWTPayload): Scope[] {
    const granted = new Set<string>(config.defaultScopes);
    for (const value of claimValues(payload, config.scopesClaim)) {
      if (config.scopeMap) for (const s of config.scopeMap[value] ?? []) granted.add(s);
      else if ((SCOPES as readonly string[]).includes(value)) granted.add(value);
    }
    return SCOPES.filter((s) => granted.has(s));
  }

  function instancesOf(payload: JWTPayload): string[] {
    const granted = new Set<string>(config.defaultInstances);
    for (const value of claimValues(payload, config.instancesClaim)) {
      if (config.instanceMap) for (const i of config.instanceMap[value] ?? []) granted.add(i);
      else if (configured.includes(value)) granted.add(value);
    }
    if (granted.has(ALL_INSTANCES)) return [...configured];
    return configured.filter((i) => granted.has(i));
  }

  function explain(err: unknown, kid: string | undefined, alg: string): AppError {
    const skew = `${Math.round(config.clockSkewMs / 1000)} s of clock skew allowed`;
    if (err instanceof AppError) return err;
    if (err instanceof errors.JWTExpired) {
      const exp = typeof err.payload.exp === 'number' ? new Date(err.payload.exp * 1000).toISOString() : 'an unknown time';
      return invalidJwt(`JWT expired at ${exp} (${skew})`);
    }
    if (err instanceof errors.JWTClaimValidationFailed) {
      const p = err.payload;
      switch (err.claim) {
        case 'nbf':
          return invalidJwt(`JWT is not valid before ${typeof p.nbf === 'number' ? new Date(p.nbf * 1000).toISOString() : '?'} (${skew})`);
        case 'aud':
          return invalidJwt(`JWT audience ${clip(p.aud)} is not ${config.audiences.map((a) => `'${a}'`).join(' or ')} (OIDC_AUDIENCE)`);
        case 'iss':
          return invalidJwt(`JWT issuer ${clip(p.iss)} is not '${config.issuer}' (OIDC_ISSUER)`);
        case 'exp':
          return invalidJwt(err.reason === 'missing' ? 'JWT has no expiry (exp): only expiring JWTs are accepted' : `JWT exp claim is invalid: ${err.message}`);
        default:
          return invalidJwt(`JWT claim ${err.claim} is invalid: ${err.message}`);
      }
    }
    if (err instanceof errors.JWSSignatureVerificationFailed) return invalidJwt(`JWT signature does not verify with the issuer's key${kid ? ` '${kid}'` : ''}: signed by another key, or altered`);
    if (err instanceof errors.JWKSNoMatchingKey && kid && keys?.kids.has(kid)) return invalidJwt(`JWT names the issuer's key '${kid}' with algorithm ${alg}, which that key is not for`);
    if (err instanceof errors.JWKSNoMatchingKey) return invalidJwt(kid ? `JWT names key ${clip(kid).replace(/^"|"$/g, "'")}, which is not in the key set of ${config.issuer}` : `no key in the key set of ${config.issuer} matches the JWT (alg ${alg}, no kid)`);
    if (err instanceof errors.JWKSMultipleMatchingKeys) return invalidJwt('JWT has no key id (kid) and several of the issuer\'s keys match it');
    if (err instanceof errors.JOSEAlgNotAllowed) return invalidJwt(`JWT algorithm '${alg}' is not accepted (OIDC_ALGORITHMS: ${config.algorithms.join(', ')})`);
    if (err instanceof errors.JOSEError) return invalidJwt(`malformed JWT: ${err.message}`);
    // jose reads a key the JWT selected with WebCrypto: a key set entry it cannot use is the issuer's fault, not a 500.
    return invalidJwt(`JWT could not be verified: ${errorMessage(err)}`);
  }

  async function verify(jwt: string): Promise<Principal> {
    if (Buffer.byteLength(jwt) > MAX_JWT_BYTES) throw invalidJwt(`JWT is too large (${Buffer.byteLength(jwt)} bytes; at most ${MAX_JWT_BYTES})`);
    if (!looksLikeJwt(jwt)) throw invalidJwt('malformed JWT: not three base64url parts separated by dots');
    let header: ReturnType<typeof decodeProtectedHeader>;
    try {
      header = decodeProtectedHeader(jwt);
    } catch (err) {
      throw invalidJwt(`malformed JWT: ${errorMessage(err)}`);
    }
    const alg = typeof header.alg === 'string' ? header.alg : String(header.alg);
    // Refused before any key is looked up: `none` carries no signature, HS* would take a public key as the secret.
    if (!config.algorithms.includes(alg)) {
      throw invalidJwt(alg === 'none' ? "JWT algorithm 'none' (unsigned) is not accepted" : `JWT algorithm ${clip(alg).replace(/^"|"$/g, "'")} is not accepted (OIDC_ALGORITHMS: ${config.algorithms.join(', ')})`);
    }
    const kid = typeof header.kid === 'string' ? header.kid : undefined;
    let payload: JWTPayload;
    try {
      const keySet = await keySetFor(kid);
      ({ payload } = await jwtVerify(jwt, keySet.get, {
        issuer: config.issuer,
        audience: config.audiences,
        algorithms: config.algorithms,
        clockTolerance: Math.round(config.clockSkewMs / 1000),
        currentDate: clock(),
        requiredClaims: ['exp'],
      }));
    } catch (err) {
      throw explain(err, kid, alg);
    }
    const claimed = claimAt(payload, config.subjectClaim);
    const subject = typeof claimed === 'string' ? claimed : undefined;
    if (!subject) throw invalidJwt(`JWT has no subject claim '${config.subjectClaim}' (OIDC_SUBJECT_CLAIM)`);
    if (subject.length > MAX_SUBJECT_CHARS || /[\u0000-\u001f]/.test(subject)) throw invalidJwt(`JWT subject is longer than ${MAX_SUBJECT_CHARS} characters or holds control characters`);
    return {
      tokenId: principalId(config.issuer, subject),
      name: `oidc:${subject}`,
      kind: 'oidc',
      subject,
      scopes: scopesOf(payload),
      instances: instancesOf(payload),
      expiresAt: new Date((payload.exp as number) * 1000),
    };
  }

  return {
    issuer: config.issuer,
    verify,
    keyState: () => ({ fetchedAt: keys ? new Date(keys.fetchedAt) : null, kids: keys ? [...keys.kids] : [], lastError }),
  };
}
