/**
 * A private PKI as trust (cosign's `--ca-roots`/`--ca-intermediates`, containers-policy's `pki`):
 * PEM bundles of roots and intermediates, made into certificate authorities with no validity
 * bounds of their own (each certificate's dates still apply). No SCT is asked of such a chain.
 */
import { VerificationError } from '../errors.ts';
import { decodePem } from '../encoding/pem.ts';
import type { TrustedAuthority } from './types.ts';

const BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;

/**
 * Every CERTIFICATE block of a PEM text, as DER.
 * @throws VerificationError VERIFY_CERTIFICATE_INVALID when a block is damaged or there is none.
 */
export function pemCertificates(text: string, what: string): Uint8Array[] {
  const blocks = text.match(BLOCK) ?? [];
  if (blocks.length === 0)
    throw new VerificationError(
      'VERIFY_CERTIFICATE_INVALID',
      `The ${what} hold no PEM certificate ("-----BEGIN CERTIFICATE-----").`,
    );
  return blocks.map((b, i) => {
    try {
      return decodePem(b).bytes;
    } catch {
      throw new VerificationError('VERIFY_CERTIFICATE_INVALID', `Certificate ${i + 1} of the ${what} is damaged.`);
    }
  });
}

/** One authority per root, each with every intermediate given (leaf-most first, as cosign takes them). */
export function privatePkiAuthorities(rootsPem: string, intermediatesPem = ''): TrustedAuthority[] {
  const roots = pemCertificates(rootsPem, 'CA roots');
  const intermediates = intermediatesPem.trim() ? pemCertificates(intermediatesPem, 'CA intermediates') : [];
  return roots.map((root, i) => ({
    name: roots.length > 1 ? `private PKI (root ${i + 1})` : 'private PKI',
    uri: '',
    certChain: [...intermediates, root],
    validFor: { start: new Date(0) },
  }));
}
