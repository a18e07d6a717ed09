import { readFileSync } from 'node:fs';
import path from 'node:path';
import { PROJECT_ROOT } from '../../scripts/project.ts';

/** The text of one `## heading` section of the README, up to the next `## `. */
export function readmeSection(heading: string): string {
  const readme = readFileSync(path.join(PROJECT_ROOT, 'README.md'), 'utf8');
  const start = readme.indexOf(`\n## ${heading}\n`);
  if (start < 0) throw new Error(`README has no section "## ${heading}"`);
  const end = readme.indexOf('\n## ', start + 4);
  return readme.slice(start, end < 0 ? undefined : end);
}

/**
 * The shell blocks of a section (```sh fences, indented ones in list items too), each as its command lines:
 * trailing comments dropped, backslash continuations joined.
 */
export function shellBlocks(section: string): string[][] {
  const blocks: string[][] = [];
  const fence = /^([ \t]*)```sh\n([\s\S]*?)^\1```/gm;
  for (const m of section.matchAll(fence)) {
    const indent = m[1]!.length;
    const text = m[2]!
      .split('\n')
      .map((l) => l.slice(indent))
      .join('\n')
      .replace(/\\\n\s*/g, ' ');
    blocks.push(text.split('\n').map(stripComment).filter((l) => l.trim() !== ''));
  }
  return blocks;
}

/** Inline code spans of a section that start with `prefix` (e.g. `docker compose`). */
export function inlineCommands(section: string, prefix: string): string[] {
  return [...section.matchAll(/`([^`\n]+)`/g)].map((m) => m[1]!).filter((c) => c.startsWith(prefix));
}

/** A line without its trailing `# comment` (a # inside quotes stays). */
function stripComment(line: string): string {
  let quote: string | null = null;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quote) {
      if (c === quote) quote = null;
    } else if (c === "'" || c === '"') quote = c;
    else if (c === '#' && (i === 0 || /\s/.test(line[i - 1]!))) return line.slice(0, i).trimEnd();
  }
  return line.trimEnd();
}

/** Shell words of a simple command line (quotes, no expansions). */
export function shellWords(line: string): string[] {
  const words: string[] = [];
  let cur = '';
  let quote: string | null = null;
  let has = false;
  for (const c of line) {
    if (quote) {
      if (c === quote) quote = null;
      else cur += c;
    } else if (c === "'" || c === '"') {
      quote = c;
      has = true;
    } else if (/\s/.test(c)) {
      if (has || cur) words.push(cur);
      cur = '';
      has = false;
    } else {
      cur += c;
      has = true;
    }
  }
  if (quote) throw new Error(`unterminated quote in: ${line}`);
  if (has || cur) words.push(cur);
  return words;
}
