import { Command, CommanderError } from 'commander';
import { ConfigError, loadDotEnv } from '../shared/config/config.ts';
import { AppError } from '../shared/errors.ts';
import { registerGraphCommands } from './commands/graph.commands.ts';
import { registerBackupCommands } from './commands/backup.commands.ts';
import { registerIndexCommands } from './commands/index.commands.ts';
import { registerStackCommands } from './commands/stack.command.ts';
import { registerStartCommand } from './commands/start.command.ts';
import { registerTestCommand } from './commands/test.command.ts';
import { registerTokenCommands } from './commands/token.commands.ts';
import { registerToolsCommands } from './commands/tools.command.ts';
import { registerSecretsCommands } from './commands/secrets.commands.ts';
import { PrerequisiteError } from './stack/service.ts';

loadDotEnv();

const program = new Command()
  .name('pk-mcp')
  .description('Personal Knowledge MCP: index Git repositories and let IDE agents ask about the code over MCP')
  .version('0.1.0')
  .showHelpAfterError('(run with --help for usage)')
  .exitOverride();

registerStartCommand(program);
registerStackCommands(program);
registerTestCommand(program);
registerIndexCommands(program);
registerGraphCommands(program);
registerTokenCommands(program);
registerSecretsCommands(program);
registerBackupCommands(program);
registerToolsCommands(program);
program
  .command('mcp')
  .description('run the MCP server over stdio (for IDE agents); logs go to stderr')
  .action(async () => {
    await import('../mcp/stdio.ts');
  });

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    process.exitCode = err.exitCode;
  } else if (err instanceof ConfigError || err instanceof PrerequisiteError || err instanceof AppError) {
    process.stderr.write(`error: ${err.message}\n`);
    process.exitCode = 2;
  } else {
    process.stderr.write(`error: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  }
}
