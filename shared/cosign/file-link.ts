/**
 * File verification links: a Sigstore bundle, the file's digest and what the signer must be, in
 * the URL fragment, so opening the link verifies in the viewer's browser (nothing of it reaches a
 * server log). A public interface: keep the format exactly.
 *
 *   #/verify-file?digest=sha256:<hex>&bundle=<base64url of the bundle JSON bytes>
 *                [&key=<base64url SPKI DER, or url-encoded PEM>] [Sigstore parameters]
 *
 * The Sigstore parameters are those of image links (sigstore-params.ts) but `rekorPublicKey`,
 * which a file's bundle does not use: certificateIdentity, certificateIdentityRegexp,
 * certificateOidcIssuer, certificateOidcIssuerRegexp, the GitHub workflow claims, trustedRoot,
 * caRoots, caIntermediates, tlog. `digest` may be left out (the viewer then chooses the file).
 * Values are read with decodeURIComponent ("+" is a plus sign), as link.ts reads them.
 * The bundle is base64url of its exact bytes, so the link carries the evidence unchanged.
 */
import { VerificationError } from '../errors.ts';
import { fromBase64Url, toBase64Url } from '../encoding/base64.ts';
import { parsePublicKey } from '../crypto/keys.ts';
import type { KeyAlgorithm } from '../crypto/pkcs.ts';
import { decode, rawParams, unformKey } from './fragment.ts';
import { hasCertificatePolicy, readSigstoreParams, sigstoreQuery, type SigstoreParams } from './sigstore-params.ts';

export const VERIFY_FILE_ROUTE = '/verify-file';

/** Sigstore parameters a file link carries (no Rekor key: a bundle's logs come from the trust root). */
export type FileSigstoreParams = Omit<SigstoreParams, 'rekorPublicKey'>;

export interface FileLinkInput {
  /** `sha256:<hex>` of the file; absent: the viewer chooses the file. */
  digest?: string | undefined;
  /** The bundle JSON, exactly as read. */
  bundle: Uint8Array | string;
  /** The public key (SPKI DER), for a bundle signed with a key. */
  spki?: Uint8Array | undefined;
  sigstore: FileSigstoreParams;
}

export interface ParsedFileLink {
  /** `sha256:<hex>`, or null when the link leaves the file to the viewer. */
  digest: string | null;
  /** The bundle JSON text. */
  bundleJson: string;
  spki: Uint8Array | null;
  algorithm: KeyAlgorithm | null;
  sigstore: FileSigstoreParams;
}

const DIGEST = /^sha256:[0-9a-f]{64}$/;

function invalid(why: string): VerificationError {
  return new VerificationError('VERIFY_LINK_INVALID', `This verification link is not valid: ${why}.`);
}

/**
 * The 32 bytes of a `sha256:<hex>` digest (upper-case hex and surrounding spaces accepted).
 * @throws VerificationError VERIFY_POLICY_INVALID when it is not one.
 */
export function sha256DigestBytes(digest: string): Uint8Array {
  const d = digest.trim().toLowerCase();
  if (!DIGEST.test(d))
    throw new VerificationError(
      'VERIFY_POLICY_INVALID',
      `The file digest must be sha256: and 64 hexadecimal digits, not "${digest.trim().slice(0, 80)}".`,
    );
  const out = new Uint8Array(32);
  for (let i = 0; i < 32; i++) out[i] = parseInt(d.slice(7 + 2 * i, 9 + 2 * i), 16);
  return out;
}

/**
 * The canonical file verification link.
 * @throws VerificationError VERIFY_LINK_INVALID when the digest is malformed or neither a key nor a
 *   certificate identity is given; KeyError for a key that is not one.
 */
export function fileVerificationLink(origin: string, input: FileLinkInput): string {
  const digest = input.digest?.trim().toLowerCase();
  if (digest !== undefined && !DIGEST.test(digest)) throw invalid(`"${digest}" is not a sha256:<hex> digest`);
  const spki = input.spki ? parsePublicKey(toBase64Url(input.spki)).spki : undefined;
  if (!spki && !hasCertificatePolicy(input.sigstore)) throw invalid('it needs a public key or a certificate identity');
  const bundle = typeof input.bundle === 'string' ? new TextEncoder().encode(input.bundle) : input.bundle;
  const query = [
    ...(digest ? [`digest=${encodeURIComponent(digest)}`] : []),
    `bundle=${toBase64Url(bundle)}`,
    ...(spki ? [`key=${toBase64Url(spki)}`] : []),
    ...sigstoreQuery({ ...input.sigstore, rekorPublicKey: undefined } as SigstoreParams),
  ];
  return `${new URL(origin).origin}/#${VERIFY_FILE_ROUTE}?${query.join('&')}`;
}

function readBundle(raw: string | undefined): string {
  if (!raw) throw invalid('it carries no bundle (bundle=…)');
  const bytes = fromBase64Url(decode(raw, 'bundle').trim());
  if (!bytes) throw invalid('the bundle is not base64url');
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw invalid('the bundle is not UTF-8 text');
  }
}

/**
 * Reads the query of a file verification link (after `?`, still percent-encoded).
 * @throws VerificationError VERIFY_LINK_INVALID (with what is missing or wrong), or the KeyError of
 *   a key that is not one.
 */
export function readFileVerificationQuery(query: string): ParsedFileLink {
  const params = rawParams(query);
  const get = (name: string): string | undefined => (params.has(name) ? decode(params.get(name)!, name) : undefined);
  const digestText = get('digest')?.trim().toLowerCase();
  if (digestText && !DIGEST.test(digestText)) throw invalid(`"${digestText}" is not a sha256:<hex> digest`);
  const bundleJson = readBundle(params.get('bundle'));
  const { rekorPublicKey: _ignored, ...sigstore } = readSigstoreParams(get);
  const rawKey = params.get('key');
  let spki: Uint8Array | null = null;
  let algorithm: KeyAlgorithm | null = null;
  if (rawKey) ({ spki, algorithm } = parsePublicKey(decode(unformKey(rawKey), 'key').trim()));
  else if (!hasCertificatePolicy(sigstore))
    throw invalid('it carries no public key (key=…) and no certificate identity (certificateIdentity=…)');
  return { digest: digestText || null, bundleJson, spki, algorithm, sigstore };
}
