/**
 * The layers, checked on every `npm test` (lint step) by dependency-cruiser:
 *
 *   shared/: errors.ts ← encoding ← crypto ← registry ← cosign ← ops   (each imports only leftwards)
 *   web/ and server/ import shared/, never each other; shared/ imports neither, and no Node module.
 *
 * Only shared/crypto/ reaches the crypto libraries (@noble/*, hash-wasm, scrypt-js).
 * No module takes part in an import cycle.
 */
const layer = (name, below) => ({
  name: `no-upward-import-from-${name}`,
  comment: `shared/${name}/ may import only from ${below.length ? below.map((b) => `shared/${b}/`).join(', ') + ', ' : ''}itself and shared/errors.ts.`,
  severity: 'error',
  from: { path: `^shared/${name}/` },
  to: { path: '^shared/', pathNot: [`^shared/${name}/`, '^shared/errors\\.ts$', ...below.map((b) => `^shared/${b}/`)] },
});

module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      comment: 'Import cycles make a module impossible to understand (or test) on its own.',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    layer('encoding', []),
    layer('crypto', ['encoding']),
    layer('registry', ['encoding', 'crypto']),
    layer('cosign', ['encoding', 'crypto', 'registry']),
    layer('ops', ['encoding', 'crypto', 'registry', 'cosign']),
    {
      name: 'errors-imports-nothing',
      comment: 'shared/errors.ts is the bottom of the stack.',
      severity: 'error',
      from: { path: '^shared/errors\\.ts$' },
      to: { path: '^(shared|web|server)/' },
    },
    {
      name: 'shared-is-pure',
      comment: 'shared/ runs in the page and in the server: it imports neither web/ nor server/.',
      severity: 'error',
      from: { path: '^shared/' },
      to: { path: '^(web|server)/' },
    },
    {
      name: 'shared-no-node',
      comment: 'shared/ runs in the browser: no node:* or other Node core module.',
      severity: 'error',
      from: { path: '^shared/' },
      to: { dependencyTypes: ['core'] },
    },
    {
      name: 'web-not-server',
      severity: 'error',
      from: { path: '^web/' },
      to: { path: '^server/' },
    },
    {
      name: 'server-not-web',
      severity: 'error',
      from: { path: '^server/' },
      to: { path: '^web/' },
    },
    {
      name: 'web-no-node',
      comment: 'The page runs in a browser.',
      severity: 'error',
      from: { path: '^web/' },
      to: { dependencyTypes: ['core'] },
    },
    {
      name: 'crypto-libraries-in-crypto-only',
      comment: 'One module owns crypto: only shared/crypto/ uses the crypto libraries.',
      severity: 'error',
      from: { path: '^(shared|web|server)/', pathNot: '^shared/crypto/' },
      to: { path: 'node_modules/(@noble/|hash-wasm/|scrypt-js/)' },
    },
    {
      name: 'not-to-unresolvable',
      severity: 'error',
      from: {},
      to: { couldNotResolve: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(node_modules|dist|test-results)/' },
    tsConfig: { fileName: 'tsconfig.json' },
    tsPreCompilationDeps: true,
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      extensions: ['.ts', '.js', '.mjs', '.svelte', '.json'],
    },
  },
};
