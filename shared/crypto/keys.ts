/**
 * Public-key PEM and the entry points the page uses to read key files: which kind of file it is,
 * and the plain private keys `cosign import-key-pair` accepts.
 */
import { KeyError } from '../errors.ts';
import { fromBase64Url } from '../encoding/base64.ts';
import { decodePem, encodePem } from '../encoding/pem.ts';
import { ENCRYPTED_LABELS } from './envelope.ts';
import {
  PLAIN_PRIVATE_KEY_LABELS,
  parsePlainPrivateKey,
  parseSpki,
  type PrivateKeyInfo,
  type PublicKeyInfo,
} from './pkcs.ts';

export const PUBLIC_KEY_LABEL = 'PUBLIC KEY';

/** A SubjectPublicKeyInfo as PEM, as `cosign public-key` prints it. */
export function publicKeyPem(spki: Uint8Array): string {
  return encodePem(PUBLIC_KEY_LABEL, spki);
}

/**
 * Reads a public key: a PEM `PUBLIC KEY` block, or the base64url of the SPKI DER (the compact
 * form verification links may carry).
 * @throws KeyError KEY_PEM_INVALID, KEY_PEM_LABEL_UNKNOWN and the {@link parseSpki} codes.
 */
export function parsePublicKey(text: string): PublicKeyInfo {
  const trimmed = text.trim();
  if (!trimmed.startsWith('-----')) {
    const der = /^[A-Za-z0-9_-]+$/.test(trimmed) ? fromBase64Url(trimmed) : null;
    if (!der) throw new KeyError('KEY_PEM_INVALID', 'This is neither a PEM public key nor the base64url of one.');
    return parseSpki(der);
  }
  const block = decodePem(trimmed);
  if (block.label !== PUBLIC_KEY_LABEL) {
    throw new KeyError(
      'KEY_PEM_LABEL_UNKNOWN',
      `This holds a "${block.label}" block; a public key is a "PUBLIC KEY" block.`,
    );
  }
  return parseSpki(block.bytes);
}

export type KeyFileKind = 'encrypted' | 'plain-private' | 'public';

/**
 * Tells what a PEM key file is without decrypting it.
 * @throws KeyError KEY_PEM_INVALID, KEY_PEM_LABEL_UNKNOWN
 */
export function keyFileKind(text: string): KeyFileKind {
  const { label } = decodePem(text);
  if ((ENCRYPTED_LABELS as readonly string[]).includes(label)) return 'encrypted';
  if ((PLAIN_PRIVATE_KEY_LABELS as readonly string[]).includes(label)) return 'plain-private';
  if (label === PUBLIC_KEY_LABEL) return 'public';
  if (label === 'ENCRYPTED PRIVATE KEY') {
    throw new KeyError(
      'KEY_PEM_LABEL_UNKNOWN',
      'This is a password-protected PKCS#8 key, which cosign does not import; decrypt it first with "openssl pkey -in key.pem -out plain.pem".',
    );
  }
  throw new KeyError(
    'KEY_PEM_LABEL_UNKNOWN',
    `A "${label}" PEM block is not a key this page reads: use a cosign key (ENCRYPTED SIGSTORE PRIVATE KEY) or a plain PEM private key.`,
  );
}

/**
 * Reads a plain PEM private key as `cosign import-key-pair` does.
 * @throws KeyError as {@link parsePlainPrivateKey} and {@link decodePem}.
 */
export function parsePlainPrivateKeyPem(text: string): PrivateKeyInfo {
  const { label, bytes } = decodePem(text);
  return parsePlainPrivateKey(label, bytes);
}
