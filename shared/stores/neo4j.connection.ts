import neo4j, { type AuthToken, type AuthTokenManager, type Driver } from 'neo4j-driver';
import type { FileSecret } from '../secrets/secret-file.ts';
import { once, type StoreConnection } from './store.ts';

export interface Neo4jConnection extends StoreConnection {
  driver: Driver;
  database: string;
}

/**
 * Basic auth whose password is the file's current value (NEO4J_PASSWORD_FILE). The driver asks for the token
 * each time it hands out a connection and re-authenticates pooled connections whose token differs, so a
 * rotated password is used from the next query on. A refused password makes the secret re-read its file (or
 * take a rotation's pending value) and the driver retry the query (managed transactions and executeQuery).
 */
function fileAuth(user: string, secret: FileSecret): AuthTokenManager {
  let token: AuthToken = neo4j.auth.basic(user, secret.value);
  return {
    getToken() {
      if (token.credentials !== secret.value) token = neo4j.auth.basic(user, secret.value);
      return token;
    },
    handleSecurityException(failed, code) {
      if (code !== 'Neo.ClientError.Security.Unauthorized') return false;
      secret.authFailed(failed.credentials as string);
      return true;
    },
  };
}

const UNAUTHORIZED = 'Neo.ClientError.Security.Unauthorized';
/** Neo4j locks a user out for `dbms.security.auth_lock_time` (5 s by default) after a few refused logins. */
const RATE_LIMITED = 'Neo.ClientError.Security.AuthenticationRateLimit';
const AUTH_RETRY_DELAYS_MS = [50, 200, 500, 1000, 1500, 2000, 2000, 2000, 2000];

/**
 * Retries `work` when a new connection's login was refused (or its connection dropped for it). The driver hands a refusal at login (as opposed to
 * one on an open connection) to the caller without asking the token manager, so it is handled here: the
 * secret re-reads its file (or takes a rotation's pending value) and the query runs again. A lockout after
 * refused logins is waited out without blaming the value.
 */
async function retryLogin<T>(secret: FileSecret, work: () => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    const presented = secret.value;
    try {
      return await work();
    } catch (err) {
      // A lockout can also arrive as a ProtocolError carrying the server's message.
      const lockedOut = /authentication details too many times/.test((err as Error).message ?? '');
      const code = lockedOut ? RATE_LIMITED : (err as { code?: string }).code;
      // The server also drops a connection whose login it refused: the next write on it fails (EPIPE).
      const dropped = code === 'ServiceUnavailable' && attempt < 3;
      if ((code !== UNAUTHORIZED && code !== RATE_LIMITED && !dropped) || attempt >= AUTH_RETRY_DELAYS_MS.length) throw err;
      if (code === UNAUTHORIZED) secret.authFailed(presented);
      await new Promise((r) => setTimeout(r, AUTH_RETRY_DELAYS_MS[attempt]));
    }
  }
}

/** The driver's entry points the platform uses, each retried on a refused login (see retryLogin). */
function followSecret(driver: Driver, secret: FileSecret): Driver {
  const executeQuery = driver.executeQuery.bind(driver);
  driver.executeQuery = ((...args: Parameters<Driver['executeQuery']>) => retryLogin(secret, () => executeQuery(...args))) as Driver['executeQuery'];
  const session = driver.session.bind(driver);
  driver.session = ((...args: Parameters<Driver['session']>) => {
    const s = session(...args);
    const executeRead = s.executeRead.bind(s);
    const executeWrite = s.executeWrite.bind(s);
    s.executeRead = ((...a: Parameters<typeof executeRead>) => retryLogin(secret, () => executeRead(...a))) as typeof s.executeRead;
    s.executeWrite = ((...a: Parameters<typeof executeWrite>) => retryLogin(secret, () => executeWrite(...a))) as typeof s.executeWrite;
    return s;
  }) as Driver['session'];
  return driver;
}

export function createNeo4jConnection(options: {
  uri: string;
  user: string;
  password: string;
  database: string;
  /** The password as its file holds it now; wins over `password`. */
  passwordFile?: FileSecret;
}): Neo4jConnection {
  const auth = options.passwordFile ? fileAuth(options.user, options.passwordFile) : neo4j.auth.basic(options.user, options.password);
  const base = neo4j.driver(options.uri, auth, {
    connectionTimeout: 5000,
    maxConnectionPoolSize: 50,
    disableLosslessIntegers: true,
  });
  const driver = options.passwordFile ? followSecret(base, options.passwordFile) : base;
  return {
    driver,
    database: options.database,
    async ping() {
      await driver.executeQuery('RETURN 1', {}, { database: options.database });
    },
    close: once(() => driver.close()),
  };
}
