/**
 * Verifying Sigstore bundles (conformance cases: Rekor v1 with SET and inclusion proof; Rekor v2
 * with checkpoint and an RFC 3161 timestamp) with the page's shared code — in Chromium, in Node,
 * and as the `cosign-web verify-bundle` command — next to `cosign verify-blob` (cosign 3.1) with
 * the same bundle, file and trusted root, offline.
 */
import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import type { Page } from 'playwright';
import { verifyFileBundle } from '../shared/sigstore/verify-file.ts';
import { CONFORMANCE_DIR } from '../test/conformance.ts';
import { TOOL_PATHS } from '../test/rig/tools.ts';

const IDENTITY =
  'https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main';
const ISSUER = 'https://token.actions.githubusercontent.com';
const CASES = ['happy-path-v0.3', 'rekor2-happy-path'] as const;

export interface SigstoreFigures {
  name: string;
  cosign: number;
  cli: number;
  node: number;
  chromium: number;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function times(runs: number, fn: () => Promise<unknown> | unknown): Promise<number> {
  await fn();
  const out: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await fn();
    out.push(performance.now() - t0);
  }
  return median(out);
}

export async function benchSigstore(page: Page, runs: number): Promise<SigstoreFigures[]> {
  const artifact = join(CONFORMANCE_DIR, 'bundle-verify', 'a.txt');
  const sha256Hex = createHash('sha256').update(readFileSync(artifact)).digest('hex');
  const out: SigstoreFigures[] = [];
  for (const name of CASES) {
    const dir = join(CONFORMANCE_DIR, 'bundle-verify', name);
    const bundlePath = join(dir, 'bundle.sigstore.json');
    const rootPath = name.startsWith('rekor2')
      ? join(dir, 'trusted_root.json')
      : join(CONFORMANCE_DIR, 'public-good-trusted_root.json');
    const bundle = readFileSync(bundlePath, 'utf8');
    const trustedRoot = readFileSync(rootPath, 'utf8');
    const args = [
      '--bundle',
      bundlePath,
      '--certificate-identity',
      IDENTITY,
      '--certificate-oidc-issuer',
      ISSUER,
      '--trusted-root',
      rootPath,
      artifact,
    ];
    const cosign = await times(runs, () =>
      execFileSync(TOOL_PATHS.cosign3, ['verify-blob', ...args], { stdio: 'pipe' }),
    );
    const cli = await times(runs, () =>
      execFileSync(
        process.execPath,
        [join(import.meta.dirname, '..', 'bin', 'cosign-web.mjs'), 'verify-bundle', ...args],
        { stdio: 'pipe' },
      ),
    );
    const node = await times(runs, () =>
      verifyFileBundle({
        bundleJson: bundle,
        artifact: { sha256: Uint8Array.from(Buffer.from(sha256Hex, 'hex')) },
        policy: { certificateIdentity: IDENTITY, certificateOidcIssuer: ISSUER },
        trustedRootJson: new TextEncoder().encode(trustedRoot),
      }),
    );
    const req = { bundle, sha256Hex, trustedRoot, identity: IDENTITY, issuer: ISSUER };
    await page.evaluate((r) => window.benchVerifyBundle(r), req);
    const chromium: number[] = [];
    for (let i = 0; i < runs; i++) chromium.push((await page.evaluate((r) => window.benchVerifyBundle(r), req)).ms);
    out.push({ name, cosign, cli, node, chromium: median(chromium) });
  }
  return out;
}
