/**
 * The layers, checked on every `npm test` (lint step) by dependency-cruiser:
 *
 *   shared/: errors.ts ← encoding ← crypto ← registry ← sigstore ← tuf ← cosign ← ops
 *   (each imports only leftwards)
 *   web/, server/ and cli/ import shared/, never each other; shared/ imports none, and no Node module.
 *
 * Only shared/crypto/ reaches the crypto libraries (@noble/*, hash-wasm, scrypt-js); only
 * shared/sigstore/ reaches the ASN.1 libraries (pkijs, asn1js) and RE2 (re2js).
 * No module takes part in an import cycle.
 */
/** A rule: nothing whose path matches `from` (a regex) may import what `to` matches. */
const forbid = (name, comment, from, to) => ({ name, comment, severity: 'error', from: { path: from }, to });

const layer = (name, below) =>
  forbid(
    `no-upward-import-from-${name}`,
    `shared/${name}/ may import only from ${below.length ? below.map((b) => `shared/${b}/`).join(', ') + ', ' : ''}itself and shared/errors.ts.`,
    `^shared/${name}/`,
    { path: '^shared/', pathNot: [`^shared/${name}/`, '^shared/errors\\.ts$', ...below.map((b) => `^shared/${b}/`)] },
  );

/** A folder whose code runs in a browser: no node:* or other Node core module. */
const noNode = (dir, comment) => forbid(`${dir}-no-node`, comment, `^${dir}/`, { dependencyTypes: ['core'] });

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
    layer('sigstore', ['encoding', 'crypto']),
    layer('tuf', ['encoding', 'crypto', 'registry', 'sigstore']),
    layer('registry', ['encoding', 'crypto']),
    layer('cosign', ['encoding', 'crypto', 'sigstore', 'registry']),
    layer('ops', ['encoding', 'crypto', 'sigstore', 'tuf', 'registry', 'cosign']),
    forbid('errors-imports-nothing', 'shared/errors.ts is the bottom of the stack.', '^shared/errors\\.ts$', {
      path: '^(shared|web|server)/',
    }),
    forbid(
      'shared-is-pure',
      'shared/ runs in the page and in the server: it imports neither web/ nor server/.',
      '^shared/',
      { path: '^(web|server)/' },
    ),
    noNode('shared', 'shared/ runs in the browser: no node:* or other Node core module.'),
    forbid(
      'cli-uses-shared-only',
      'The command line (cli/) is an edge like the server: it runs shared/ code only.',
      '^cli/',
      {
        path: '^(web|server)/',
      },
    ),
    forbid('web-not-server', 'web/ and server/ meet only in shared/.', '^web/', { path: '^server/' }),
    forbid('server-not-web', 'web/ and server/ meet only in shared/.', '^server/', { path: '^web/' }),
    noNode('web', 'The page runs in a browser.'),
    {
      name: 'crypto-libraries-in-crypto-only',
      comment: 'One module owns crypto: only shared/crypto/ uses the crypto libraries.',
      severity: 'error',
      from: { path: '^(shared|web|server)/', pathNot: '^shared/crypto/' },
      to: { path: 'node_modules/(@noble/|hash-wasm/|scrypt-js/)' },
    },
    {
      name: 'asn1-libraries-in-sigstore-only',
      comment:
        'Certificates, CMS and RE2 are read in shared/sigstore/ alone (loaded only when a signature needs them).',
      severity: 'error',
      from: { path: '^(shared|web|server)/', pathNot: '^shared/sigstore/' },
      to: { path: 'node_modules/(pkijs|asn1js|re2js)/' },
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
    exclude: { path: '^(node_modules|dist|bench/dist|test-results)/' },
    tsConfig: { fileName: 'tsconfig.json' },
    tsPreCompilationDeps: true,
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      extensions: ['.ts', '.js', '.mjs', '.svelte', '.json'],
    },
  },
};
