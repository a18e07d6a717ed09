import { loadConfig } from '../../shared/config/config.ts';
import { createLogger } from '../../shared/logger.ts';
import { createPlatform, type Platform } from '../../shared/platform.ts';

/** Builds the platform for one CLI command and always closes it, so the process can exit. */
export async function withPlatform<T>(fn: (platform: Platform) => Promise<T>): Promise<T> {
  const config = loadConfig();
  const logger = createLogger({ logLevel: process.env.LOG_LEVEL ?? 'warn', logPretty: false }, { destination: 2 });
  const platform = createPlatform(config, logger);
  try {
    return await fn(platform);
  } finally {
    await platform.close();
  }
}

export const list = (value: string, previous: string[] = []) => [...previous, ...value.split(',').map((s) => s.trim()).filter(Boolean)];

export function printJson(value: unknown): void {
  console.log(JSON.stringify(value, null, 2));
}

