import { z } from 'zod';
import type { SymbolRef } from '../../shared/graph/graph-query.service.ts';
import { location } from './tool.ts';

/** Schemas and renderings the graph tools share. */

export const symbolRef = z.object({
  repository: z.string(),
  path: z.string(),
  name: z.string(),
  qualifiedName: z.string().describe('Class.method for members'),
  kind: z.string().describe('function, method, class, interface, type, enum, struct, trait'),
  startLine: z.number(),
  endLine: z.number(),
});

export const commitRef = z.object({ repository: z.string(), branch: z.string(), commit: z.string() });

export const graphFields = {
  repository: z.string().min(1).max(100).optional().describe('only this repository (see list_repositories); all when omitted'),
  depth: z.number().int().min(1).max(5).optional().describe('levels to follow (1-5, default 1)'),
  limit: z.number().int().min(1).max(200).optional().describe('at most this many results (1-200, default 50)'),
};

export const symbolLine = (s: SymbolRef) => `${location(s.repository, s.path, s.startLine, s.endLine)} ${s.kind} ${s.qualifiedName}`;

export const pickSymbol = (s: SymbolRef): SymbolRef => ({
  repository: s.repository,
  path: s.path,
  name: s.name,
  qualifiedName: s.qualifiedName,
  kind: s.kind,
  startLine: s.startLine,
  endLine: s.endLine,
});
