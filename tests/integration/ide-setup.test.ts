import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../scripts/project.ts';
import { cliEnv } from '../helpers/cli.ts';
import { openTestStores, type TestStores } from '../helpers/context.ts';

/**
 * The README's IDE set-up, as written: each stdio snippet (Claude Code, Cursor, VS Code) is read from the
 * README, the checkout's path put in for `/path/to/personal-knowledge-mcp`, and launched exactly so, from a
 * folder that is not the checkout, by a real MCP client that lists the tools and calls one.
 * The stores are the local stack's, in a schema of this test's own (environment only: the command is the README's).
 */
const README = readFileSync(path.join(PROJECT_ROOT, 'README.md'), 'utf8');
const PLACEHOLDER = '/path/to/personal-knowledge-mcp';

function documentedCommands(): Array<{ where: string; command: string; args: string[] }> {
  const ide = README.slice(README.indexOf('## Connecting an IDE agent (MCP)'));
  const claude = /claude mcp add pk-mcp -- (\S+) (.+)\n/.exec(ide);
  const found: Array<{ where: string; command: string; args: string[] }> = [];
  if (claude) found.push({ where: 'Claude Code', command: claude[1]!, args: claude[2]!.trim().split(/\s+/) });
  for (const where of ['Cursor', 'VS Code']) {
    const block = new RegExp(`\\*\\*${where}\\*\\*[^\\n]*\\n\\n\`\`\`json\\n([\\s\\S]*?)\`\`\``).exec(ide);
    if (!block) continue;
    const config = JSON.parse(block[1]!) as { mcpServers?: Record<string, { command?: string; args?: string[] }>; servers?: Record<string, { command?: string; args?: string[] }> };
    const local = (config.mcpServers ?? config.servers ?? {})['pk-mcp-local'];
    if (local?.command) found.push({ where, command: local.command, args: local.args ?? [] });
  }
  return found;
}

describe('the README IDE set-up works as written', () => {
  let t: TestStores;
  let elsewhere: string;
  beforeAll(async () => {
    t = await openTestStores();
    elsewhere = mkdtempSync(path.join(tmpdir(), 'pk-ide-'));
  });
  afterAll(async () => {
    await t?.cleanup();
    rmSync(elsewhere, { recursive: true, force: true });
  });

  it('documents one stdio command for each IDE, all the same, needing no build', () => {
    const commands = documentedCommands();
    expect(commands.map((c) => c.where)).toEqual(['Claude Code', 'Cursor', 'VS Code']);
    for (const c of commands) {
      expect({ command: c.command, args: c.args }).toEqual({ command: 'node', args: [`${PLACEHOLDER}/scripts/pk-mcp.js`, 'mcp'] });
    }
    expect(README).not.toContain('dist/mcp/stdio.js');
  });

  it('the documented command serves the tools to a real MCP client from another folder', async () => {
    const { command, args } = documentedCommands()[0]!;
    const transport = new StdioClientTransport({
      command,
      args: args.map((a) => a.replace(PLACEHOLDER, PROJECT_ROOT)),
      cwd: elsewhere,
      env: { ...(cliEnv(t.config) as Record<string, string>), LOG_LEVEL: 'warn', SEMANTIC_MODEL: 'none' },
      stderr: 'pipe',
    });
    let stderr = '';
    transport.stderr?.on('data', (d) => (stderr += d));
    const client = new Client({ name: 'ide-setup-test', version: '1' });
    try {
      await client.connect(transport);
      const { tools } = await client.listTools();
      expect(tools.map((x) => x.name).sort(), stderr).toEqual(
        ['find_symbol', 'get_architecture', 'get_callees', 'get_callers', 'get_dependencies', 'get_dependents', 'get_file', 'get_job_status', 'index_repository', 'list_repositories', 'semantic_search'].sort(),
      );
      const listed = (await client.callTool({ name: 'list_repositories', arguments: {} })) as { isError?: boolean; content: Array<{ text: string }> };
      expect(listed.isError, listed.content[0]?.text).toBeFalsy();
      expect(listed.content[0]!.text).toMatch(/^No repositories/);
    } finally {
      await client.close();
    }
  });
});
