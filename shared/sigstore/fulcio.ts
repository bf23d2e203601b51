/**
 * A signing certificate from Fulcio for a key made for one signature: the request (the ID token,
 * the public key and a proof of possession — the key's signature over the token's subject, which
 * is what Fulcio checks), and the answer checked before anything is signed with it: the leaf holds
 * our public key, chains to a certificate authority of the trusted root now, and carries a valid
 * SCT when the root lists CT logs.
 * https://github.com/sigstore/fulcio/blob/main/fulcio.proto (CreateSigningCertificate, v2 REST:
 * `POST /api/v2/signingCert`), https://github.com/sigstore/fulcio/blob/main/docs/how-certificate-issuing-works.md
 *
 * Fulcio's CORS does not allow an Authorization header, so the token travels in the body
 * (`credentials.oidcIdentityToken`), as sigstore-js sends it.
 */
import { CosignWebError, KeylessError } from '../errors.ts';
import { publicKeyPem } from '../crypto/keys.ts';
import { bytesEqual, toBase64 } from '../encoding/base64.ts';
import { parseJsonObject, type JsonObject } from './json.ts';
import { parseCertificate, parsePemCertificates, type Certificate } from './certificate.ts';
import { verifyCertificateChain } from './chain.ts';
import { verifyEmbeddedScts } from './sct.ts';
import type { FetchLike } from './oidc.ts';
import type { TrustedRoot } from './types.ts';

export interface SigningCertificate {
  /** DER of the leaf Fulcio issued. */
  leaf: Uint8Array;
  /** DER of the certificates between the leaf and the root (the root left out), issuer first. */
  intermediates: Uint8Array[];
  /** DER of every certificate Fulcio sent after the leaf, as it sent them (what cosign writes as the chain). */
  chain: Uint8Array[];
  /** The certificate authority of the trusted root it chains to (its URI). */
  authority: string;
  parsed: Certificate;
}

const ALGORITHM: Record<string, string> = { 'P-256': 'ECDSA', 'P-384': 'ECDSA', 'P-521': 'ECDSA', Ed25519: 'ED25519' };

function invalid(message: string): KeylessError {
  return new KeylessError('FULCIO_RESPONSE_INVALID', `Fulcio's answer is not a certificate chain: ${message}.`);
}

/** The PEM chain of a v2 answer, embedded-SCT or detached-SCT form. */
function chainOf(body: JsonObject): string[] {
  const b = body as Record<string, { chain?: { certificates?: unknown } } | null | undefined>;
  const certs = (b['signedCertificateEmbeddedSct'] ?? b['signedCertificateDetachedSct'])?.chain?.certificates;
  if (!Array.isArray(certs) || certs.length === 0 || !certs.every((c) => typeof c === 'string'))
    throw invalid('it holds no chain.certificates');
  return certs as string[];
}

/**
 * The certificates of a chain, parsed: the leaf, and those between it and the root (a self-signed
 * root Fulcio may append is left out: roots come from the trusted root only).
 * @throws KeylessError FULCIO_RESPONSE_INVALID
 */
function readChain(pems: string[]): { ders: Uint8Array[]; leaf: Certificate; intermediates: Uint8Array[] } {
  try {
    const ders = pems.flatMap((pem) => {
      const d = parsePemCertificates(pem);
      if (d.length !== 1) throw invalid('an entry of the chain is not one PEM certificate');
      return d;
    });
    const parsed = ders.map((d) => parseCertificate(d));
    const intermediates = ders
      .slice(1)
      .filter((_, i) => !bytesEqual(parsed[i + 1]!.subjectDer, parsed[i + 1]!.issuerDer));
    return { ders, leaf: parsed[0]!, intermediates };
  } catch (e) {
    if (e instanceof KeylessError || !(e instanceof CosignWebError)) throw e;
    throw invalid(e.message.replace(/\.$/, ''));
  }
}

/** Fulcio's own sentence from an error answer (grpc-gateway's `{code, message}`), if any. */
function fulcioMessage(text: string): string {
  try {
    const m = parseJsonObject(text, () => new Error('not JSON'))['message'];
    return typeof m === 'string' ? m.trim() : '';
  } catch {
    return ''; // not JSON: the status alone then
  }
}

/**
 * Asks Fulcio for a certificate and checks it against `root` at `now`.
 * @param o.proof the DER signature of the key over the token's subject (oidc.ts readIdToken)
 * @param o.curve the key's curve ('P-256' for keyless signing)
 * @throws KeylessError FULCIO_UNREACHABLE (no answer), FULCIO_REFUSED (4xx/5xx: Fulcio's sentence
 *   kept — an expired token, another audience, an unverified email), FULCIO_RESPONSE_INVALID,
 *   FULCIO_KEY_MISMATCH (the certificate is for another key), FULCIO_CERTIFICATE_UNTRUSTED (no path
 *   to a CA of the root, or no valid SCT where the root lists CT logs)
 */
export async function requestSigningCertificate(
  fetch: FetchLike,
  o: {
    url: string;
    idToken: string;
    spki: Uint8Array;
    curve: string;
    proof: Uint8Array;
    root: TrustedRoot;
    now?: Date;
    signal?: AbortSignal;
  },
): Promise<SigningCertificate> {
  let res: Response;
  try {
    res = await fetch(`${o.url.replace(/\/$/, '')}/api/v2/signingCert`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
      body: JSON.stringify({
        credentials: { oidcIdentityToken: o.idToken },
        publicKeyRequest: {
          publicKey: { algorithm: ALGORITHM[o.curve] ?? 'ECDSA', content: publicKeyPem(o.spki) },
          proofOfPossession: toBase64(o.proof),
        },
      }),
      ...(o.signal ? { signal: o.signal } : {}),
    });
  } catch (e) {
    if (e instanceof CosignWebError) throw e;
    if ((e as Error).name === 'AbortError') throw e;
    throw new KeylessError('FULCIO_UNREACHABLE', `Fulcio at ${o.url} could not be reached: ${(e as Error).message}.`);
  }
  const text = await res.text();
  if (!res.ok) {
    const said = fulcioMessage(text);
    throw new KeylessError(
      'FULCIO_REFUSED',
      `Fulcio refused to issue a certificate (HTTP ${res.status})${said ? `: ${said}` : ''}. Nothing was signed.`,
      { status: res.status },
    );
  }
  const body = parseJsonObject(text, (why) => invalid(why));
  const { ders, leaf, intermediates } = readChain(chainOf(body));
  if (!bytesEqual(leaf.spki, o.spki))
    throw new KeylessError(
      'FULCIO_KEY_MISMATCH',
      'The certificate Fulcio answered is for another public key than the one made for this signature, so it was not used.',
    );
  const now = o.now ?? new Date();
  try {
    const chain = await verifyCertificateChain(leaf, o.root.certificateAuthorities, now);
    if (o.root.ctlogs.length && chain.path[1]) await verifyEmbeddedScts(leaf, chain.path[1], o.root.ctlogs);
    return { leaf: ders[0]!, intermediates, chain: ders.slice(1), authority: chain.authority.uri, parsed: leaf };
  } catch (e) {
    if (!(e instanceof CosignWebError)) throw e;
    throw new KeylessError(
      'FULCIO_CERTIFICATE_UNTRUSTED',
      `The certificate Fulcio answered does not check against the trusted root: ${e.message}`,
      { cause: e },
    );
  }
}
