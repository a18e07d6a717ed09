import { pino, type Logger, type LoggerOptions } from 'pino';

export type { Logger };

export interface LoggerConfig {
  logLevel: string;
  logPretty: boolean;
}

/**
 * The one logger factory. JSON lines by default (what log shippers want);
 * pretty only when asked or on a TTY. `destination` 2 keeps stdout free for
 * protocols that own it (MCP over stdio).
 */
export function createLogger(config: LoggerConfig, options: { name?: string; destination?: 1 | 2 } = {}): Logger {
  const base: LoggerOptions = {
    level: config.logLevel,
    ...(options.name ? { name: options.name } : {}),
    redact: {
      paths: ['req.headers.authorization', 'req.headers.cookie', '*.password', '*.token', '*.apiKey'],
      censor: '[redacted]',
    },
  };
  const fd = options.destination ?? 1;
  if (config.logPretty) {
    return pino({
      ...base,
      transport: { target: 'pino-pretty', options: { destination: fd, colorize: true, translateTime: 'SYS:HH:MM:ss' } },
    });
  }
  return pino(base, pino.destination({ fd, sync: false }));
}
