#!/usr/bin/env node
// `npx cosign-web …`: the command line of cosign-web, the same shared/ code the page runs.
// The sources are TypeScript; tsx (a dependency already, for the server) loads them.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
