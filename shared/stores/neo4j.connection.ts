import neo4j, { type Driver } from 'neo4j-driver';
import { once, type StoreConnection } from './store.ts';

export interface Neo4jConnection extends StoreConnection {
  driver: Driver;
  database: string;
}

export function createNeo4jConnection(options: {
  uri: string;
  user: string;
  password: string;
  database: string;
}): Neo4jConnection {
  const driver = neo4j.driver(options.uri, neo4j.auth.basic(options.user, options.password), {
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
