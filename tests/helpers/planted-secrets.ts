/** Secrets planted in test sources: shaped like real ones (the rules check prefixes and lengths), valid for nothing. */
export const PLANTED = {
  awsAccessKeyId: 'AKIA2E0A8F3B244C9986',
  awsSecret: '9jB1fR4kq2Nw8Zx5Lm3Pv7Ty0Hs6Dc2Gf4Ja8Kq',
  github: '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',
  slack: 'xoxb-1234567890-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx',
  dbPassword: 's3cr3tPassw0rd',
  privateKeyLine: 'MIIEowIBAAKCAQEAx4Wz1x0E2wd3W7u6N6t8pXqKQn0e3mH7O1m3Kq0v9mN2bZ8k',
  generic: 'Zx8f2Lq9Vb3Nw7Rt5Yp1Km4Hs6Dj0Gc2',
};

export const PLANTED_SOURCE = `export const config = {
  aws: { accessKeyId: "${PLANTED.awsAccessKeyId}", secretAccessKey: "${PLANTED.awsSecret}" },
  github: "${PLANTED.github}",
  slack: "${PLANTED.slack}",
  database: "postgres://admin:${PLANTED.dbPassword}@db.internal:5432/app",
};
export const signingKey = \`-----BEGIN RSA PRIVATE KEY-----
${PLANTED.privateKeyLine}
Yf0B7k3pX2mQ5w9eR1tY7uI3oP5aS6dF8gH0jK2lZ4xC6vB8nM1qW3eR5tY7uI9o
-----END RSA PRIVATE KEY-----\`;
const apiToken = "${PLANTED.generic}";
export function connectWithRetry(attempt: number): number {
  const tokenCount = nextToken(attempt);
  return tokenCount;
}
`;

