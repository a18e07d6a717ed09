import picomatch from 'picomatch';
import { badRequest } from './errors.ts';

/**
 * Path globs for search filters, matched without backtracking. picomatch
 * compiles a glob to a JavaScript regular expression, and one with several
 * `*` (`*a*a*a*a*b`, 9 characters) takes seconds to fail against a path with
 * many `a`s, and centuries at 40: a search request could stall the API's one
 * event loop. Here a glob is matched segment by segment with dynamic
 * programming, in time proportional to the glob's length times the path's.
 *
 * The syntax is picomatch's common subset, with `dot: true`: `*` (within a
 * path segment), `**` as a whole segment (any number of segments, none
 * included), `?`, classes (`[a-z]`, `[!a]`, `[[:digit:]]`), braces
 * (`{a,b}`, `{1..3}`, nested), `\` escapes and a leading `!` that negates.
 * Extended globs (`@(a|b)`, `!(x)`) would need the regular expressions this
 * avoids, and are refused with a pointer to braces.
 */
export const MAX_GLOB_ALTERNATIVES = 64;

type GlobToken = { kind: 'literal'; text: string } | { kind: 'star' } | { kind: 'one' } | { kind: 'class'; test: (c: string) => boolean };
type GlobSegment = { globstar: true } | { globstar: false; tokens: GlobToken[] };

function invalidGlob(glob: string, why: string) {
  return badRequest(`path glob "${glob}" is not valid: ${why}`, 'invalid_glob');
}

/** Index of the `]` closing the class opened at `open`, or -1 (then the `[` is a literal). */
function classEnd(p: string, open: number): number {
  let i = open + 1;
  if (p[i] === '!' || p[i] === '^') i++;
  if (p[i] === ']') i++;
  for (; i < p.length; i++) {
    if (p[i] === '\\') i++;
    else if (p[i] === '[' && p[i + 1] === ':') {
      const close = p.indexOf(':]', i + 2);
      if (close !== -1) i = close + 1;
    } else if (p[i] === ']') return i;
  }
  return -1;
}

const POSIX_CLASSES: Record<string, string> = {
  alnum: 'a-zA-Z0-9', alpha: 'a-zA-Z', ascii: '\\x00-\\x7F', blank: ' \\t', cntrl: '\\x00-\\x1F\\x7F', digit: '0-9',
  graph: '\\x21-\\x7E', lower: 'a-z', print: '\\x20-\\x7E', punct: '!-\\/:-@\\[-`{-~', space: ' \\t\\r\\n\\v\\f',
  upper: 'A-Z', word: 'A-Za-z0-9_', xdigit: 'A-Fa-f0-9',
};

/** One character class as a single-character test: a regular expression that cannot backtrack. */
function classTest(glob: string, body: string): (c: string) => boolean {
  let i = 0;
  const negate = body[0] === '!' || body[0] === '^';
  if (negate) i++;
  let source = '';
  const escape = (c: string) => c.replace(/[\\\]\[^-]/g, '\\$&');
  for (; i < body.length; i++) {
    const c = body[i]!;
    if (c === '[' && body[i + 1] === ':') {
      const close = body.indexOf(':]', i + 2);
      const name = close === -1 ? undefined : body.slice(i + 2, close);
      if (name === undefined || !POSIX_CLASSES[name]) throw invalidGlob(glob, `unknown character class "[:${name ?? ''}:]"`);
      source += POSIX_CLASSES[name];
      i = close + 1;
    } else if (c === '\\' && i + 1 < body.length) {
      source += escape(body[++i]!);
    } else if (c === '-' && source !== '' && i + 1 < body.length) {
      source += '-';
    } else {
      source += escape(c);
    }
  }
  let re: RegExp;
  try {
    re = new RegExp(`^[${negate ? '^' : ''}${source}]$`);
  } catch {
    throw invalidGlob(glob, `the character class "[${body}]" is not valid`);
  }
  return (c) => c !== '/' && re.test(c);
}

/** `{a,b}`, nested, and `{1..3}` / `{a..c}` ranges, expanded into whole globs; other braces stay literal. */
function expandBraces(glob: string, p: string, out: string[]): void {
  let open = -1;
  let depth = 0;
  const commas: number[] = [];
  for (let i = 0; i < p.length; i++) {
    const c = p[i]!;
    if (c === '\\') i++;
    else if (c === '[') {
      const end = classEnd(p, i);
      if (end !== -1) i = end;
    } else if (c === '{') {
      if (depth++ === 0) open = i;
    } else if (c === ',' && depth === 1) commas.push(i);
    else if (c === '}' && depth > 0 && --depth === 0) {
      const inner = p.slice(open + 1, i);
      const [head, tail] = [p.slice(0, open), p.slice(i + 1)];
      let alternatives: string[] | undefined;
      if (commas.length > 0) {
        alternatives = [...commas, i].map((end, k) => p.slice(k === 0 ? open + 1 : commas[k - 1]! + 1, end));
      } else {
        alternatives = braceRange(glob, inner);
      }
      if (!alternatives) {
        // Not a list or a range: literal braces, as picomatch reads `{a}`.
        expandBraces(glob, `${head}\\{${inner}\\}${tail}`, out);
        return;
      }
      for (const alternative of alternatives) {
        expandBraces(glob, `${head}${alternative}${tail}`, out);
        if (out.length > MAX_GLOB_ALTERNATIVES) throw invalidGlob(glob, `its braces expand to more than ${MAX_GLOB_ALTERNATIVES} alternatives`);
      }
      return;
    }
  }
  out.push(p);
}

function braceRange(glob: string, inner: string): string[] | undefined {
  const numeric = /^(-?\d+)\.\.(-?\d+)(?:\.\.(-?\d+))?$/.exec(inner);
  const letters = /^([a-zA-Z])\.\.([a-zA-Z])$/.exec(inner);
  if (!numeric && !letters) return undefined;
  const [from, to] = numeric ? [Number(numeric[1]), Number(numeric[2])] : [letters![1]!.charCodeAt(0), letters![2]!.charCodeAt(0)];
  const step = Math.abs(Number(numeric?.[3] ?? 1)) || 1;
  if (Math.abs(to - from) / step + 1 > MAX_GLOB_ALTERNATIVES) throw invalidGlob(glob, `the range {${inner}} has more than ${MAX_GLOB_ALTERNATIVES} values`);
  const values: string[] = [];
  for (let v = from; from <= to ? v <= to : v >= to; v += from <= to ? step : -step) values.push(numeric ? String(v) : String.fromCharCode(v));
  return values;
}

/** Splits at each `/` outside a character class. */
function splitSegments(p: string): string[] {
  const parts: string[] = [];
  let start = 0;
  for (let i = 0; i < p.length; i++) {
    if (p[i] === '\\') i++;
    else if (p[i] === '[') {
      const end = classEnd(p, i);
      if (end !== -1) i = end;
    } else if (p[i] === '/') {
      parts.push(p.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(p.slice(start));
  return parts;
}

function parseSegment(glob: string, segment: string): GlobSegment {
  if (segment === '**') return { globstar: true };
  const tokens: GlobToken[] = [];
  const literal = (c: string) => {
    const last = tokens[tokens.length - 1];
    if (last?.kind === 'literal') last.text += c;
    else tokens.push({ kind: 'literal', text: c });
  };
  for (let i = 0; i < segment.length; i++) {
    const c = segment[i]!;
    if (c === '\\') literal(i + 1 < segment.length ? segment[++i]! : '\\');
    else if (c === '*') {
      if (tokens[tokens.length - 1]?.kind !== 'star') tokens.push({ kind: 'star' });
    } else if (c === '?') tokens.push({ kind: 'one' });
    else if (c === '[' && classEnd(segment, i) !== -1) {
      const end = classEnd(segment, i);
      tokens.push({ kind: 'class', test: classTest(glob, segment.slice(i + 1, end)) });
      i = end;
    } else literal(c);
  }
  return { globstar: false, tokens };
}

/** Whether a segment's tokens match `s` (which holds no `/`): O(tokens × length). */
function segmentMatches(tokens: GlobToken[], s: string): boolean {
  const n = s.length;
  let next = new Uint8Array(n + 1);
  next[n] = 1;
  for (let t = tokens.length - 1; t >= 0; t--) {
    const token = tokens[t]!;
    const cur = new Uint8Array(n + 1);
    for (let j = n; j >= 0; j--) {
      switch (token.kind) {
        case 'star':
          cur[j] = next[j] || (j < n && cur[j + 1]) ? 1 : 0;
          break;
        case 'literal':
          cur[j] = next[j + token.text.length] && s.startsWith(token.text, j) ? 1 : 0;
          break;
        case 'one':
          cur[j] = j < n && next[j + 1] ? 1 : 0;
          break;
        case 'class':
          cur[j] = j < n && next[j + 1] && token.test(s[j]!) ? 1 : 0;
          break;
      }
    }
    next = cur;
  }
  return next[0] === 1;
}

/** Whether the glob's segments match the path's: O(segments × path segments) segment matches. */
function pathMatches(segments: GlobSegment[], parts: string[]): boolean {
  const m = parts.length;
  let next = new Uint8Array(m + 1);
  next[m] = 1;
  for (let i = segments.length - 1; i >= 0; i--) {
    const segment = segments[i]!;
    const cur = new Uint8Array(m + 1);
    for (let j = m; j >= 0; j--) {
      if (segment.globstar) cur[j] = next[j] || (j < m && cur[j + 1]) ? 1 : 0;
      else cur[j] = j < m && next[j + 1] && segmentMatches(segment.tokens, parts[j]!) ? 1 : 0;
    }
    next = cur;
  }
  return next[0] === 1;
}

/** A search path filter: throws `invalid_glob` (400) with the reason for a glob it cannot take. */
export function compilePathGlob(glob: string): (path: string) => boolean {
  let pattern = glob;
  let negated = false;
  while (pattern.startsWith('!') && !pattern.startsWith('!(')) {
    negated = !negated;
    pattern = pattern.slice(1);
  }
  while (pattern.startsWith('./')) pattern = pattern.slice(2);
  if (pattern === '') throw invalidGlob(glob, 'it matches no path');
  try {
    // Only for picomatch's verdict on balance: an unclosed `[` or `{` is a typo, not a literal character.
    picomatch.makeRe(pattern, { strictBrackets: true, dot: true });
  } catch (err) {
    throw invalidGlob(glob, (err instanceof Error ? err.message : String(err)).replace(/ - use .*$/, ''));
  }
  if (/(^|[^\\])[!@+*?]\(/.test(pattern) || /(^|[^\\])\([^)]*\|/.test(pattern)) {
    throw invalidGlob(glob, 'extended globs such as @(a|b) or !(x) are not supported; use braces for alternatives, as in {a,b}');
  }
  const alternatives: string[] = [];
  expandBraces(glob, pattern, alternatives);
  const compiled = alternatives.map((alternative) =>
    // A leading `**.` (`**.ts`) reaches into every folder, as in picomatch; any other `**` within a segment is a `*`.
    splitSegments(/^\*\*\./.test(alternative) ? `**/*${alternative.slice(2)}` : alternative).map((segment) => parseSegment(glob, segment)),
  );
  return (path) => {
    const parts = path.split('/');
    return compiled.some((segments) => pathMatches(segments, parts)) !== negated;
  };
}
