import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { PROJECT_ROOT } from '../project.ts';
import { prepareTools, toolPath, type ToolName } from '../tools/tools.ts';

const TOOLS: ToolName[] = ['compose-model', 'helm', 'kubernetes-validate', 'checkov', 'image-deps'];

export function registerToolsCommands(program: Command): void {
  const tools = program
    .command('tools')
    .description('the offline tools the deployment tests use (compose-go loader, Helm v4, kubernetes-validate, checkov, the image\'s production dependencies), under .data/tools/');

  tools
    .command('prepare')
    .description('fetch and build every tool not yet built (Go module proxy, PyPI); cached, never rebuilt for the same version')
    .argument('[names...]', `only these (${TOOLS.join(', ')})`)
    .action((names: string[]) => {
      const unknown = names.filter((n) => !TOOLS.includes(n as ToolName));
      if (unknown.length > 0) throw new Error(`unknown tool(s) ${unknown.join(', ')}: choose from ${TOOLS.join(', ')}`);
      const result = prepareTools((m) => console.error(m), names.length > 0 ? (names as ToolName[]) : undefined);
      for (const [name, state] of Object.entries(result)) console.log(`${name.padEnd(30)} ${state}`);
    });

  tools
    .command('status')
    .description('show where each tool is, or that it is missing (exit 1 if any is)')
    .action(() => {
      for (const name of TOOLS) {
        const file = toolPath(name);
        const ok = existsSync(file);
        console.log(`${name.padEnd(20)} ${ok ? 'ready  ' : 'missing'} ${path.relative(PROJECT_ROOT, file)}`);
        if (!ok) process.exitCode = 1;
      }
    });
}
