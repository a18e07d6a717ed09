#!/usr/bin/env node
// Entry point of the `pk-mcp` command. It runs the CLI compiled to JavaScript (scripts/cli-build.js
// builds it on first use and again after a source changed); where it cannot be compiled, it runs the
// TypeScript sources through tsx's loader.
import { compiledCli } from './cli-build.js';

const compiled = await compiledCli();
if (compiled) {
  await import(compiled);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('./cli.ts');
}
