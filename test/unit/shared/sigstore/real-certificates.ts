/**
 * Real Sigstore material for the certificate, chain and SCT tests, read from the conformance suite
 * beside the checkout (../shared/conformance, never copied in): a case's signing certificate, the
 * time its log entry was integrated, and the trusted root it is verified against. Node only.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CONFORMANCE_DIR } from '../../../conformance.ts';
import { parseTrustedRoot } from '../../../../shared/sigstore/trusted-root.ts';
import type { TrustedRoot } from '../../../../shared/sigstore/types.ts';

const caseDir = (name: string): string => join(CONFORMANCE_DIR, 'bundle-verify', name);

function bundleOf(name: string) {
  return JSON.parse(readFileSync(join(caseDir(name), 'bundle.sigstore.json'), 'utf8'));
}

/** The signing certificate of a conformance case's bundle (v0.3 certificate or v0.1/v0.2 chain). */
export function conformanceLeaf(name: string): Uint8Array {
  const vm = bundleOf(name).verificationMaterial;
  const raw: string = vm.certificate?.rawBytes ?? vm.x509CertificateChain.certificates[0].rawBytes;
  return new Uint8Array(Buffer.from(raw, 'base64'));
}

/** The integrated time of the case's first log entry. */
export function integratedTime(name: string): Date {
  return new Date(Number(bundleOf(name).verificationMaterial.tlogEntries[0].integratedTime) * 1000);
}

/** The case's own trusted root, else public good's. */
export function conformanceRoot(name?: string): TrustedRoot {
  const own = name ? join(caseDir(name), 'trusted_root.json') : '';
  return parseTrustedRoot(
    readFileSync(own && existsSync(own) ? own : join(CONFORMANCE_DIR, 'public-good-trusted_root.json')),
  );
}
