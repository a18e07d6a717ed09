/**
 * Errors that carry a stable code and an HTTP status. Anything that is not an
 * AppError is an internal error: logged with its stack, shown as a generic 500.
 */
export class AppError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'AppError';
  }
}

export const badRequest = (message: string, code = 'bad_request') => new AppError(400, code, message);
export const notFound = (message: string, code = 'not_found') => new AppError(404, code, message);
export const conflict = (message: string, code = 'conflict') => new AppError(409, code, message);

export function errorMessage(err: unknown): string {
  if (err instanceof AggregateError && err.errors.length > 0) {
    return err.errors.map(errorMessage).join('; ');
  }
  if (err instanceof Error) return err.message || err.name;
  return String(err);
}

/** Rejects with a clear message when `promise` takes longer than `ms`. */
export async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Where in `value` a string holds a NUL character (`\u0000`), as a dotted
 * path (`include.0`, `branch`; '' for `value` itself), or undefined when none does. Postgres
 * text cannot store NUL: a value carrying one fails its query as an internal
 * error ("invalid byte sequence"), so callers turn this into a 400 first.
 * No name, path, branch, glob or query the platform takes can contain one.
 * Iterative, so a deeply nested body cannot overflow the stack.
 */
export function findNulCharacter(value: unknown, where = ''): string | undefined {
  const pending: Array<[unknown, string]> = [[value, where]];
  while (pending.length > 0) {
    const [v, at] = pending.pop()!;
    if (typeof v === 'string') {
      if (v.includes('\u0000')) return at;
    } else if (Array.isArray(v)) {
      for (let i = v.length - 1; i >= 0; i--) pending.push([v[i], at ? `${at}.${i}` : String(i)]);
    } else if (v !== null && typeof v === 'object' && !Buffer.isBuffer(v)) {
      for (const [k, child] of Object.entries(v).reverse()) {
        if (k.includes('\u0000')) return at ? `${at}.${JSON.stringify(k)}` : JSON.stringify(k);
        pending.push([child, at ? `${at}.${k}` : k]);
      }
    }
  }
  return undefined;
}

/** The message for a NUL character found at `where` (see `findNulCharacter`). */
export const nulCharacterMessage = (where: string) => `${where || 'value'}: must not contain NUL (\\u0000) characters`;
