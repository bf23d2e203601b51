/**
 * The Sigstore client conformance suite's verification cases, read from `../shared/conformance/`
 * beside the checkout (never copied into it): one case per folder of `bundle-verify/`, a name
 * ending in `_fail` must not verify; see that folder's README for the defaults below.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join, resolve } from 'node:path';

export const CONFORMANCE_DIR = resolve(import.meta.dirname, '..', '..', 'shared', 'conformance');
const CASES_DIR = join(CONFORMANCE_DIR, 'bundle-verify');

const DEFAULT_IDENTITY =
  'https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main';
const DEFAULT_ISSUER = 'https://token.actions.githubusercontent.com';

export interface ConformanceCase {
  name: string;
  shouldVerify: boolean;
  bundlePath: string;
  artifactPath: string;
  /** `sha256:<hex>` of the artifact (the suite's digest mode). */
  artifactDigest: string;
  keyPath?: string;
  trustedRootPath?: string;
  identity: string;
  issuer: string;
}

function optional(dir: string, file: string): string | undefined {
  const p = join(dir, file);
  return existsSync(p) ? p : undefined;
}

export function conformanceCases(): ConformanceCase[] {
  return readdirSync(CASES_DIR, { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .map((d) => {
      const dir = join(CASES_DIR, d.name);
      const artifactPath = optional(dir, 'artifact') ?? join(CASES_DIR, 'a.txt');
      const read = (f: string) => (optional(dir, f) ? readFileSync(join(dir, f), 'utf8').trim() : undefined);
      const keyPath = optional(dir, 'key.pub');
      const trustedRootPath = optional(dir, 'trusted_root.json');
      return {
        name: d.name,
        shouldVerify: !d.name.endsWith('_fail'),
        bundlePath: join(dir, 'bundle.sigstore.json'),
        artifactPath,
        artifactDigest: `sha256:${createHash('sha256').update(readFileSync(artifactPath)).digest('hex')}`,
        ...(keyPath ? { keyPath } : {}),
        ...(trustedRootPath ? { trustedRootPath } : {}),
        identity: read('identity') ?? DEFAULT_IDENTITY,
        issuer: read('issuer') ?? DEFAULT_ISSUER,
      };
    });
}

/** The conformance protocol's arguments for a case, in file or digest mode. */
export function conformanceArgs(c: ConformanceCase, mode: 'file' | 'digest'): string[] {
  const who = c.keyPath
    ? ['--key', c.keyPath]
    : ['--certificate-identity', c.identity, '--certificate-oidc-issuer', c.issuer];
  return [
    'verify-bundle',
    '--bundle',
    c.bundlePath,
    ...who,
    ...(c.trustedRootPath ? ['--trusted-root', c.trustedRootPath] : []),
    mode === 'file' ? c.artifactPath : c.artifactDigest,
  ];
}
