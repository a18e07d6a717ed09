import { Command, CommanderError } from 'commander';
import { ConfigError, loadDotEnv } from '../shared/config/config.ts';
import { AppError } from '../shared/errors.ts';
import { PrerequisiteError } from './stack/service.ts';

loadDotEnv();

/**
 * Each command's module, loaded only for that command: a one-shot `search` must not pay for the modules
 * of `start`, `backup` or `test` (and the stores' clients they bring). `--help` without a command, or an
 * unknown one, loads them all to list every command.
 */
type Registrar = () => Promise<(program: Command) => void>;
const COMMANDS: Record<string, Registrar> = {
  start: async () => (await import('./commands/start.command.ts')).registerStartCommand,
  stack: async () => (await import('./commands/stack.command.ts')).registerStackCommands,
  test: async () => (await import('./commands/test.command.ts')).registerTestCommand,
  // repo, index, search and jobs share one module.
  repo: async () => (await import('./commands/index.commands.ts')).registerIndexCommands,
  graph: async () => (await import('./commands/graph.commands.ts')).registerGraphCommands,
  token: async () => (await import('./commands/token.commands.ts')).registerTokenCommands,
  secrets: async () => (await import('./commands/secrets.commands.ts')).registerSecretsCommands,
  // backup and audit share one module.
  backup: async () => (await import('./commands/backup.commands.ts')).registerBackupCommands,
  tools: async () => (await import('./commands/tools.command.ts')).registerToolsCommands,
};
const ALIASES: Record<string, string> = { index: 'repo', search: 'repo', jobs: 'repo', audit: 'backup' };

function registerMcpCommand(program: Command): void {
  program
    .command('mcp')
    .description('run the MCP server over stdio (for IDE agents); logs go to stderr')
    .action(async () => {
      await import('../mcp/stdio.ts');
    });
}

const program = new Command()
  .name('pk-mcp')
  .description('Personal Knowledge MCP: index Git repositories and let IDE agents ask about the code over MCP')
  .version('0.1.0')
  .showHelpAfterError('(run with --help for usage)')
  .exitOverride();

try {
  const first = process.argv.slice(2).find((a) => !a.startsWith('-'));
  const name = first === undefined ? undefined : (ALIASES[first] ?? first);
  if (name === 'mcp') registerMcpCommand(program);
  else if (name !== undefined && COMMANDS[name]) (await COMMANDS[name]!())(program);
  else {
    // Listed in this order by `--help`.
    for (const registrar of Object.values(COMMANDS)) (await registrar())(program);
    registerMcpCommand(program);
  }
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    process.exitCode = err.exitCode;
  } else if (err instanceof ConfigError || err instanceof PrerequisiteError || err instanceof AppError) {
    process.stderr.write(`error: ${err.message}\n`);
    // 3: a waiting command gave up on an unreachable store or platform (scripts/commands/cli-support.ts).
    process.exitCode = err instanceof AppError && err.code === 'gave_up' ? 3 : 2;
  } else {
    process.stderr.write(`error: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  }
}
