/**
 * Verifying a file's Sigstore bundle from what a person gives — bundle JSON, the file or its
 * digest, a key PEM or an identity policy, a trusted root (shipped, or a file) or a private PKI —
 * the one entry the page's "Verify file" and the command line's `verify-bundle` share, so both
 * give the same verdict and the same result document (`cosign-web-verification/2`).
 */
import { parsePublicKey } from '../crypto/keys.ts';
import { toHex } from '../encoding/base64.ts';
import { sha256Bytes } from '../crypto/digest.ts';
import { parseSigstoreBundle } from './bundle.ts';
import { parseTrustedRootOnce } from './trusted-root.ts';
import { privatePkiAuthorities } from './private-pki.ts';
import { SHIPPED_ROOTS } from './shipped-roots.ts';
import { verifyBundle, type BundleVerification, type TlogRule } from './verify-bundle.ts';
import type { IdentityPolicy } from './policy.ts';

/** The result document's format; its shape is documented in the README ("Result files"). */
export const RESULT_FORMAT_V2 = 'cosign-web-verification/2';

export interface FileVerifyRequest {
  bundleJson: Uint8Array | string;
  artifact: { sha256: Uint8Array; bytes?: Uint8Array };
  keyPem?: string | undefined;
  policy?: IdentityPolicy | undefined;
  /** A trusted root file's bytes; else the shipped root named by `shippedRoot` (public good by default). */
  trustedRootJson?: Uint8Array | undefined;
  shippedRoot?: 'public-good' | 'staging' | undefined;
  caRootsPem?: string | undefined;
  caIntermediatesPem?: string | undefined;
  tlog?: TlogRule | undefined;
  now?: Date | undefined;
}

export interface FileVerification extends BundleVerification {
  format: typeof RESULT_FORMAT_V2;
  verified: true;
  /** The root verified against: its name and the SHA-256 of its bytes. */
  trustedRoot: { name: string; sha256: string };
  bundleMediaType: string;
}

function chooseRoot(req: FileVerifyRequest): { bytes: Uint8Array | string; name: string; sha256: string } {
  if (req.trustedRootJson) {
    const sha256 = toHex(sha256Bytes(req.trustedRootJson));
    return { bytes: req.trustedRootJson, name: `trusted root sha256:${sha256.slice(0, 12)}…`, sha256 };
  }
  const shipped = SHIPPED_ROOTS.find((r) => r.id === (req.shippedRoot ?? 'public-good'))!;
  return { bytes: shipped.json, name: shipped.name, sha256: shipped.sha256 };
}

/**
 * @throws SignatureError SIGNATURE_BUNDLE_INVALID, KeyError (an unreadable key), VerificationError
 *   (a trusted root that is not valid, or a check that fails).
 */
export async function verifyFileBundle(req: FileVerifyRequest): Promise<FileVerification> {
  const bundle = parseSigstoreBundle(req.bundleJson);
  const rootChoice = chooseRoot(req);
  const root = parseTrustedRootOnce(rootChoice.sha256, rootChoice.bytes);
  const key = req.keyPem?.trim() ? parsePublicKey(req.keyPem).spki : undefined;
  const privateCAs = req.caRootsPem?.trim() ? privatePkiAuthorities(req.caRootsPem, req.caIntermediatesPem) : undefined;
  const result = await verifyBundle(bundle, {
    root,
    artifact: req.artifact,
    ...(key ? { key } : {}),
    ...(req.policy ? { policy: req.policy } : {}),
    ...(req.tlog ? { tlog: req.tlog } : {}),
    ...(privateCAs ? { privateCAs } : {}),
    ...(req.now ? { now: req.now } : {}),
  });
  return {
    format: RESULT_FORMAT_V2,
    verified: true,
    trustedRoot: { name: rootChoice.name, sha256: rootChoice.sha256 },
    bundleMediaType: bundle.mediaType,
    ...result,
  };
}
