import { callGraphTool } from './call-graph.tool-factory.ts';

export const getCallersTool = callGraphTool({
  direction: 'callers',
  name: 'get_callers',
  title: 'Who calls a symbol',
  description: 'Find the functions and methods that call a symbol (to a depth: callers of callers…), from the code graph.',
  heading: 'Callers of',
  none: 'nothing in the indexed code calls it.',
});
