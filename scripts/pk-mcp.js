#!/usr/bin/env node
// Entry point of the `pk-mcp` command. The project runs its TypeScript sources
// directly through tsx's loader, so the checkout needs no build step.
import { register } from 'tsx/esm/api';

register();
await import('./cli.ts');
