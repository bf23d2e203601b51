// Exposes the app's scrypt worker to the benchmark driver: window.benchScrypt(impl, N) runs one
// derivation in the worker and returns the milliseconds the worker measured.
import '../../web/src/lib/trusted-types.ts';
import { deriveInWorker } from '../../web/src/features/keys/scrypt-client.ts';
import type { ScryptImpl } from '../../shared/crypto/scrypt.ts';

declare global {
  interface Window {
    benchScrypt(impl: ScryptImpl | 'auto', N: number): Promise<{ ms: number; impl: string; wallMs: number }>;
  }
}

window.benchScrypt = async (impl, N) => {
  const t0 = performance.now();
  const r = await deriveInWorker(
    new TextEncoder().encode('bench password'),
    new Uint8Array(32).fill(7),
    { N, r: 8, p: 1 },
    undefined,
    impl,
  );
  return { ms: r.ms, impl: r.impl, wallMs: performance.now() - t0 };
};

declare global {
  interface Window {
    benchVerifyBundle(req: {
      bundle: string;
      sha256Hex: string;
      trustedRoot?: string;
      identity: string;
      issuer: string;
    }): Promise<{ ms: number }>;
  }
}

// One Sigstore bundle verified with the page's shared code (the first call also loads it).
window.benchVerifyBundle = async (req) => {
  const { fromHex } = await import('../../shared/encoding/base64.ts');
  const { verifyFileBundle } = await import('../../shared/sigstore/verify-file.ts');
  const sha256 = fromHex(req.sha256Hex)!;
  const t0 = performance.now();
  await verifyFileBundle({
    bundleJson: req.bundle,
    artifact: { sha256 },
    policy: { certificateIdentity: req.identity, certificateOidcIssuer: req.issuer },
    ...(req.trustedRoot ? { trustedRootJson: new TextEncoder().encode(req.trustedRoot) } : {}),
  });
  return { ms: performance.now() - t0 };
};
