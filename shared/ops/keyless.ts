/**
 * "Sign with your identity": a signer for one signing, made from an ID token. A fresh
 * non-extractable ECDSA P-256 key in WebCrypto; a certificate for it from Fulcio (the token and a
 * proof of possession: the key's signature over the token's subject), checked against the trusted
 * root (shared/sigstore/fulcio.ts); then signatures with that key, each carrying the certificate.
 * `forget()` drops the key after the signing, and the token is never kept: it is used for the one
 * request to Fulcio and not stored anywhere.
 * https://github.com/sigstore/fulcio/blob/main/docs/how-certificate-issuing-works.md
 */
import { exportSpki, generateEcdsaKeyPair, signWithCryptoKey } from '../crypto/webcrypto.ts';
import { utf8 } from '../encoding/base64.ts';
import { certificateFacts } from '../sigstore/certificate.ts';
import { requestSigningCertificate } from '../sigstore/fulcio.ts';
import type { TrustedRoot } from '../sigstore/types.ts';
import type { FetchLike, IdTokenClaims } from '../sigstore/oidc.ts';
import { KeylessError } from '../errors.ts';
import type { KeyAlgorithm } from '../crypto/pkcs.ts';
import type { Signer } from './sign.ts';

/** A keyless signer, and how to drop its key once the signing is done. */
export interface KeylessSigner extends Signer {
  certificate: NonNullable<Signer['certificate']>;
  /** Drops the private key: later calls to sign() throw. Never throws. */
  forget(): void;
}

const P256: KeyAlgorithm = { kind: 'ecdsa', curve: 'P-256' };

/**
 * Makes the key, asks Fulcio for its certificate and checks it.
 * @throws KeylessError FULCIO_* (shared/sigstore/fulcio.ts), KEYLESS_TOKEN_INVALID when the
 *   certificate names no identity or issuer; errors of `fetch` pass
 */
export async function keylessSigner(o: {
  fetch: FetchLike;
  fulcioUrl: string;
  idToken: string;
  claims: Pick<IdTokenClaims, 'subject'>;
  root: TrustedRoot;
  now?: Date;
  signal?: AbortSignal;
}): Promise<KeylessSigner> {
  let pair: CryptoKeyPair | null = await generateEcdsaKeyPair('P-256', false);
  const spki = await exportSpki(pair.publicKey);
  const proof = await signWithCryptoKey(pair.privateKey, P256, utf8(o.claims.subject));
  const cert = await requestSigningCertificate(o.fetch, {
    url: o.fulcioUrl,
    idToken: o.idToken,
    spki,
    curve: 'P-256',
    proof,
    root: o.root,
    ...(o.now ? { now: o.now } : {}),
    ...(o.signal ? { signal: o.signal } : {}),
  });
  const facts = certificateFacts(cert.parsed);
  const identity = facts.identities[0];
  if (!identity || !facts.issuer)
    throw new KeylessError(
      'KEYLESS_TOKEN_INVALID',
      'The certificate Fulcio issued names no identity or no OIDC issuer, so signatures made with it could not be checked.',
    );
  return {
    algorithm: P256,
    spki,
    certificate: { leaf: cert.leaf, chain: cert.chain, identity, issuer: facts.issuer },
    async sign(data) {
      if (!pair)
        throw new KeylessError(
          'KEYLESS_UNSUPPORTED',
          'The key made for this signing was dropped; sign again to log in again.',
        );
      return signWithCryptoKey(pair.privateKey, P256, data);
    },
    forget() {
      pair = null;
    },
  };
}
