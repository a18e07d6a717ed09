import { fileGraphTool } from './file-graph.tool-factory.ts';

export const getDependentsTool = fileGraphTool({
  direction: 'dependents',
  name: 'get_dependents',
  title: 'What imports a file',
  description: 'List the files that import a file (to a depth: their importers too…), from the code graph. Use it to see what a change may affect.',
  verb: 'is imported by',
  none: 'no indexed file imports it.',
});
