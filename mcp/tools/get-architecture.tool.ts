import { z } from 'zod';
import { defineTool, plural, shortSha } from './tool.ts';

/** A repository at depth 4 can have thousands of folders; an overview that long is no overview. */
const MAX_FOLDERS = 150;
const MAX_EDGES = 100;
const MAX_MODULES = 30;

export const getArchitectureTool = defineTool({
  name: 'get_architecture',
  title: 'Repository layout',
  description:
    "Overview of a repository's structure from the code graph: folders (to a depth) with file and symbol counts, " +
    'the import edges between folders, and the external modules imported most. Use it to orient yourself before reading code.',
  inputSchema: z
    .object({
      repository: z.string().min(1).max(100).describe('repository name (see list_repositories)'),
      depth: z.number().int().min(1).max(4).optional().describe('folder levels to group by (1-4, default 1)'),
    })
    .strict(),
  outputSchema: z.object({
    repository: z.string(),
    branch: z.string(),
    commit: z.string(),
    depth: z.number(),
    folders: z.array(z.object({ folder: z.string().describe("'.' is the repository root"), files: z.number(), symbols: z.number() })),
    edges: z.array(z.object({ from: z.string(), to: z.string(), imports: z.number().describe('import statements from one folder to the other') })),
    externalModules: z.array(z.object({ module: z.string(), importers: z.number().describe('files importing it') })),
    truncated: z.boolean().describe('true when some folders, edges or modules were left out'),
  }),
  annotations: { readOnlyHint: true, openWorldHint: false },

  async handler(input, ctx) {
    const a = await ctx.graph.architecture(input.repository, { instances: ctx.instances, depth: input.depth ?? 1 });
    const folders = a.folders.slice(0, MAX_FOLDERS).map((f) => ({ folder: f.folder, files: Number(f.files), symbols: Number(f.symbols) }));
    const edges = a.edges.slice(0, MAX_EDGES).map((e) => ({ from: e.from, to: e.to, imports: Number(e.imports) }));
    const externalModules = a.externalModules.slice(0, MAX_MODULES).map((m) => ({ module: m.module, importers: Number(m.importers) }));
    const truncated = a.folders.length > folders.length || a.edges.length > edges.length || a.externalModules.length > externalModules.length;

    const lines = [`${a.repository}@${shortSha(a.commit)} (${a.branch}), folders to depth ${a.depth}:`];
    if (folders.length === 0) lines.push('(the code graph has no files for this commit: its languages may not be covered by the graph extractor)');
    for (const f of folders) lines.push(`- ${f.folder}: ${plural(f.files, 'file')}, ${plural(f.symbols, 'symbol')}`);
    if (edges.length) lines.push('Imports between folders:', ...edges.map((e) => `- ${e.from} → ${e.to} (${e.imports})`));
    if (externalModules.length) lines.push(`External modules: ${externalModules.map((m) => `${m.module} (${m.importers})`).join(', ')}`);
    if (truncated) lines.push('[some folders, edges or modules were left out: use a smaller depth]');
    return {
      text: lines.join('\n'),
      data: { repository: a.repository, branch: a.branch, commit: a.commit, depth: a.depth, folders, edges, externalModules, truncated },
    };
  },
});
