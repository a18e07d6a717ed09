import { fileGraphTool } from './file-graph.tool-factory.ts';

export const getDependenciesTool = fileGraphTool({
  direction: 'dependencies',
  name: 'get_dependencies',
  title: 'What a file imports',
  description: 'List the files and external modules a file imports (to a depth: their imports too…), from the code graph.',
  verb: 'imports',
  none: 'it imports nothing the graph knows.',
});
