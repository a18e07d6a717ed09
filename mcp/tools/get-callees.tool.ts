import { callGraphTool } from './call-graph.tool-factory.ts';

export const getCalleesTool = callGraphTool({
  direction: 'callees',
  name: 'get_callees',
  title: 'What a symbol calls',
  description: 'Find the functions and methods a symbol calls (to a depth: their callees too…), from the code graph.',
  heading: 'Callees of',
  none: 'it calls nothing the graph knows (calls into external libraries are not tracked).',
});
