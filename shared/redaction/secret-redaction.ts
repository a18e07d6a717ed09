import { lintSource } from '@secretlint/core';
import { secretLintProfiler } from '@secretlint/profiler';
import { creator as recommendedRules } from '@secretlint/secretlint-rule-preset-recommend';

// secretlint's profiler is on by default and leaves a performance mark per rule and file in the global buffer:
// a worker redacting every file it indexes grew by a million entries. Nothing here reads it.
secretLintProfiler.setEnabled(false);

/**
 * Keys, tokens and passwords that sit in source files are replaced by a marker before the text is stored,
 * embedded (an external embedding API sees only what the index holds) or answered (search snippets,
 * get_file, which reads from git). Detection is secretlint's recommended rule set (cloud provider keys,
 * private key blocks, tokens of GitHub, GitLab, Slack, Stripe, OpenAI, npm and others, passwords in
 * database connection strings and basic-auth URLs), kept up to date by its maintainers, plus one rule it
 * lacks: gitleaks' `generic-api-key`, a high-entropy value assigned to a name like secret, token or password.
 */
export const REDACTION_MARKER_PREFIX = '[REDACTED:';

export interface Redaction {
  text: string;
  /** Secrets replaced, by rule (e.g. `github`, `privatekey`, `generic-api-key`); never the values. */
  byRule: Record<string, number>;
  total: number;
}

const SECRETLINT_CONFIG = {
  rules: [
    {
      id: '@secretlint/secretlint-rule-preset-recommend',
      rule: recommendedRules,
      // AWS access key ids are off in the preset (an id alone grants nothing); here they go with the text.
      rules: [{ id: '@secretlint/secretlint-rule-aws', options: { enableIDScanRule: true } }],
    },
  ],
};

/**
 * gitleaks' generic-api-key (config/gitleaks.toml): a name containing access, auth, api, credential, key,
 * password, secret or token, an assignment (`=`, `:`, `=>`, `:=` …), then a value of 10-150 token characters.
 * Like gitleaks, only values with Shannon entropy of at least 3.5 bits per character count; code adds its own
 * look-alikes, so values shaped like code are left alone: member expressions (`e.NEO4J_PASSWORD`), constant
 * names (`NEO4J_PASSWORD_FILE`), paths, and values with fewer than two digits or a digit in ten characters
 * (random keys of letters and digits have one in six; `token = nextToken` and words have none).
 */
const GENERIC_ASSIGNMENT =
  /[\w.-]{0,50}?(?:access|auth|api|credential|creds|key|passw(?:or)?d|pwd|secret|token)[\w.-]{0,20}[\s'"]{0,3}(?:=|>|:{1,3}=|\|\||:|=>|\?=|,)[`'"\s=]{0,5}([\w.=+/-]{10,150})(?=[`'"\s;,)]|\\[nr]|$)/gi;

function entropy(s: string): number {
  const counts = new Map<string, number>();
  for (const c of s) counts.set(c, (counts.get(c) ?? 0) + 1);
  let h = 0;
  for (const n of counts.values()) {
    const p = n / s.length;
    h -= p * Math.log2(p);
  }
  return h;
}

const looksLikeCode = (v: string) =>
  /^[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)+$/.test(v) || /^[A-Z][A-Z0-9_]*$/.test(v) || /^\.{0,2}\//.test(v) || v.includes(REDACTION_MARKER_PREFIX);

function genericRanges(text: string): Array<{ start: number; end: number; rule: string }> {
  const found: Array<{ start: number; end: number; rule: string }> = [];
  for (const m of text.matchAll(GENERIC_ASSIGNMENT)) {
    const value = m[1]!;
    const digits = value.replace(/\D/g, '').length;
    if (entropy(value) < 3.5 || digits < 2 || digits / value.length < 0.1 || !/[a-z]/i.test(value) || looksLikeCode(value)) continue;
    const start = m.index! + m[0].length - value.length;
    found.push({ start, end: start + value.length, rule: 'generic-api-key' });
  }
  return found;
}

const shortRule = (ruleId: string) => ruleId.replace(/^@secretlint\/secretlint-rule-/, '');

/** Replaces every secret in `text` by `[REDACTED:<rule>]`; a secret spanning lines keeps its line breaks, so line numbers hold. */
export async function redactSecrets(text: string): Promise<Redaction> {
  const result = await lintSource({
    source: { filePath: 'source', content: text, ext: '', contentType: 'text' },
    options: { config: SECRETLINT_CONFIG, noPhysicFilePath: true, maskSecrets: true },
  });
  const ranges = [
    // Some rules' ranges take the closing quote and `;` along: keep those, the code around a marker stays code.
    ...result.messages.map((m) => ({ start: m.range[0], end: m.range[1] - (/[\s"'`;,)]*$/.exec(text.slice(m.range[0], m.range[1]))?.[0].length ?? 0), rule: shortRule(m.ruleId) })),
    ...genericRanges(text),
  ].sort((a, b) => a.start - b.start || b.end - a.end);
  if (ranges.length === 0) return { text, byRule: {}, total: 0 };
  const byRule: Record<string, number> = {};
  let out = '';
  let at = 0;
  let total = 0;
  for (const r of ranges) {
    if (r.end <= at) continue; // inside one already replaced
    const start = Math.max(r.start, at);
    out += text.slice(at, start);
    const lineBreaks = text.slice(start, r.end).split('\n').length - 1;
    out += `${REDACTION_MARKER_PREFIX}${r.rule}]${'\n'.repeat(lineBreaks)}`;
    at = r.end;
    byRule[r.rule] = (byRule[r.rule] ?? 0) + 1;
    total++;
  }
  out += text.slice(at);
  return { text: out, byRule, total };
}

/** Adds one redaction's counts to a run's tally. */
export function addCounts(into: Record<string, number>, add: Record<string, number>): Record<string, number> {
  for (const [rule, n] of Object.entries(add)) into[rule] = (into[rule] ?? 0) + n;
  return into;
}

// A line no source holds: answers with several texts (search snippets) are redacted in one pass, as each
// pass costs about a millisecond however short its text.
const SEPARATOR = '\n\u2063\u2063pk-mcp-redaction\u2063\u2063\n';

/** `redactSecrets` of each text, in one pass when the texts allow it. */
export async function redactEach(texts: string[]): Promise<Redaction & { texts: string[] }> {
  if (texts.length === 0) return { texts: [], text: '', byRule: {}, total: 0 };
  const joined = await redactSecrets(texts.join(SEPARATOR));
  const parts = joined.text.split(SEPARATOR);
  if (parts.length === texts.length) return { ...joined, texts: parts };
  // A match spanned two texts (a private key cut by a snippet's end): one at a time, then.
  const each = await Promise.all(texts.map((t) => redactSecrets(t)));
  const byRule: Record<string, number> = {};
  for (const r of each) addCounts(byRule, r.byRule);
  return { texts: each.map((r) => r.text), text: each.map((r) => r.text).join('\n'), byRule, total: each.reduce((n, r) => n + r.total, 0) };
}
