import picomatch from 'picomatch';
import { describe, expect, it } from 'vitest';
import { compilePathGlob, MAX_GLOB_ALTERNATIVES } from '../../shared/path-glob.ts';

/**
 * Search path globs are matched without regular expressions (a glob of many
 * `*` made picomatch's backtrack for minutes), yet must mean what they meant
 * with picomatch: compared here with picomatch itself, on short globs and
 * paths where its backtracking costs nothing.
 */

const agrees = (glob: string, path: string) => expect(compilePathGlob(glob)(path), `${glob} vs ${path}`).toBe(picomatch(glob, { dot: true })(path));

describe('compilePathGlob', () => {
  it('matches what picomatch matches for the globs people write', () => {
    const paths = ['src/app.ts', 'src/a/b/c.tsx', 'app.ts', '.github/workflows/ci.yml', 'docs/README.md', 'pages/[id].tsx', 'lib/x.test.ts', 'a.b/c.ts', 'src/.env'];
    const globs = [
      'src/**', 'src/**/*.ts', '**/*.{ts,tsx}', '*.ts', '**/*.ts', 'src/*', '**', '**/.github/**', 'docs/*.md', '**.ts', 'src/**.ts',
      'pages/\\[id\\].tsx', '**/*.test.*', '!**/*.md', '!src/**', 'src/?pp.ts', 'src/[a-c]pp.ts', '{src,lib}/**/*.ts',
      './src/**', 'src/a/**/c.tsx', 'src/**/b/**', '**/[[:alpha:]]*.yml', 'a.b/*', 'src/.*', '**/app.{ts,js}', '*/*.ts', 'src/{a,b}/{b,c}/*',
    ];
    for (const glob of globs) for (const path of paths) agrees(glob, path);
  });

  it('agrees with picomatch on random short globs and paths', () => {
    const atoms = ['a', 'b', '.', '/', '*', '**', '?', '{a,b}', '[ab]', '[a-c]', '{,a}', 'ts', '**/', '/**', '{a,b/c}', '\\*', '{1..3}', '1'];
    const pathAtoms = ['a', 'b', 'c', '.', '/', 'ts', '1', '*'];
    let seed = 42;
    const random = (n: number) => (seed = (seed * 1103515245 + 12345) % 2147483648) % n;
    let compared = 0;
    for (let g = 0; g < 1500; g++) {
      const glob = Array.from({ length: 1 + random(6) }, () => atoms[random(atoms.length)]).join('');
      let matches: (path: string) => boolean;
      try {
        matches = compilePathGlob(glob);
      } catch {
        continue; // refused: unbalanced, or no path at all
      }
      const reference = picomatch(glob, { dot: true });
      for (let k = 0; k < 20; k++) {
        const path = Array.from({ length: 1 + random(7) }, () => pathAtoms[random(pathAtoms.length)]).join('');
        // Paths as the index stores them: relative, no empty, `.` or `..` segments.
        if (path.startsWith('/') || path.endsWith('/') || path.includes('//') || path.split('/').some((s) => s === '.' || s === '..')) continue;
        expect(matches(path), `${glob} vs ${path}`).toBe(reference(path));
        compared++;
      }
    }
    expect(compared).toBeGreaterThan(10_000);
  });

  it('answers at once where picomatch backtracks for minutes', () => {
    // picomatch: 4 s for 9 `*a` against this name, about 3x longer for each more; these would never end.
    expect(compilePathGlob(`${'*a'.repeat(200)}b`)(`${'a'.repeat(255)}.md`)).toBe(false);
    expect(compilePathGlob(`${'*a*/'.repeat(60)}b`)(`${`${'a'.repeat(100)}/`.repeat(30)}c`)).toBe(false);
    expect(compilePathGlob(`${'**/a/'.repeat(60)}b`)(`${'a/'.repeat(200)}c`)).toBe(false);
  });

  it('refuses what it cannot take, saying why', () => {
    const refusals: Array<[string, string]> = [
      ['[', 'Missing closing: "]"'],
      ['**/{', 'Missing closing: "}"'],
      ['a]', 'Missing opening: "["'],
      ['@(a|b).ts', 'extended globs such as @(a|b) or !(x) are not supported; use braces for alternatives, as in {a,b}'],
      ['!(x)', 'extended globs such as @(a|b) or !(x) are not supported; use braces for alternatives, as in {a,b}'],
      ['{1..1000}', `the range {1..1000} has more than ${MAX_GLOB_ALTERNATIVES} values`],
      ['{a,b}'.repeat(7), `its braces expand to more than ${MAX_GLOB_ALTERNATIVES} alternatives`],
      ['[z-a]', 'the character class "[z-a]" is not valid'],
      ['./', 'it matches no path'],
    ];
    for (const [glob, why] of refusals) {
      expect(() => compilePathGlob(glob), glob).toThrow(`path glob "${glob}" is not valid: ${why}`);
    }
  });
});
