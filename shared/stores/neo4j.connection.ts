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

export function createNeo4jConnection(options: {
  uri: string;
  user: string;
  password: string;
  database: string;
  /** The password as its file holds it now; wins over `password`. */
  passwordFile?: FileSecret;
}): Neo4jConnection {
  const auth = options.passwordFile ? fileAuth(options.user, options.passwordFile) : neo4j.auth.basic(options.user, options.password);
  const driver = neo4j.driver(options.uri, auth, {
    connectionTimeout: 5000,
    maxConnectionPoolSize: 50,
    disableLosslessIntegers: true,
  });
  return {
    driver,
    database: options.database,
    async ping() {
      await driver.executeQuery('RETURN 1', {}, { database: options.database });
    },
    close: once(() => driver.close()),
  };
}
