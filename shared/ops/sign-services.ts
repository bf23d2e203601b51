/**
 * Logging and timestamping a signature while signing (the "Transparency log" and "Timestamp
 * authority" options of the sign page), then verifying every answer against the trusted root
 * before sign.ts pushes anything — what cosign 3.1 `sign --signing-config --trusted-root` does:
 *
 * - bundle format: the DSSE envelope's signature is logged to Rekor v2 as a hashedrekord 0.0.2
 *   over SHA-256 of its PAE (Rekor v2 takes no DSSE entries; cosign 3.1 logs it so), and
 *   timestamped over the signature bytes; the entry and the timestamp go into the bundle's
 *   verificationMaterial, and the finished bundle is verified whole (shared/sigstore/verify-bundle.ts
 *   with the log required): signature, entry body, inclusion proof, checkpoint, log of the root,
 *   timestamp by an authority of the root;
 * - legacy `.sig` format: the timestamp over the signature bytes goes into the layer's
 *   `dev.sigstore.cosign/rfc3161timestamp` annotation (`{"SignedRFC3161Timestamp":"<b64>"}`),
 *   verified with the root's timestamp authorities. A Rekor v2 entry has no place in a legacy
 *   layer (its `dev.sigstore.cosign/bundle` holds a Rekor v1 SET, which v2 does not give), so the
 *   legacy signature is not logged.
 *
 * Loaded only when a signing uses a service (so the page's first load carries no verifier).
 */
import { SigningServiceError, VerificationError } from '../errors.ts';
import { fromHex, toBase64 } from '../encoding/base64.ts';
import { sha256Bytes } from '../crypto/digest.ts';
import { parseSpki } from '../crypto/pkcs.ts';
import { buildDsseBundle } from '../cosign/bundle.ts';
import { pae } from '../cosign/dsse.ts';
import { goJson } from '../cosign/strict-json.ts';
import { TIMESTAMP_ANNOTATION } from '../cosign/legacy-sigstore.ts';
import { parseSigstoreBundle } from '../sigstore/bundle.ts';
import { logToRekorV2, requestTimestamp, type ServiceFetch } from '../sigstore/services.ts';
import type { SigningService } from '../sigstore/signing-config.ts';
import { verifyRfc3161Timestamp } from '../sigstore/timestamp.ts';
import type { TrustedRoot } from '../sigstore/types.ts';
import { verifyBundle } from '../sigstore/verify-bundle.ts';

/** A signer's certificate: the leaf and the rest of the chain as the CA gave it (DER), and what it names. */
export interface SignerCertificate {
  leaf: Uint8Array;
  chain: Uint8Array[];
  identity: string;
  issuer: string;
}

/** The services a signing uses, chosen from a signing config, and the root their answers must verify with. */
export interface SigningServices {
  fetch: ServiceFetch;
  /** The trusted root every answer is verified against (the one verifiers will use). */
  root: TrustedRoot;
  /** A Rekor v2 log (majorApiVersion 2). */
  rekor?: SigningService;
  /** An RFC 3161 timestamp authority (its full URL, `…/api/v1/timestamp`). */
  tsa?: SigningService;
  now?: () => Date;
}

/** A verifier's refusal as the service's answer that does not verify: the TSA's for timestamp codes. */
function answerRefused(e: unknown): never {
  if (!(e instanceof VerificationError)) throw e;
  const tsa = e.code === 'VERIFY_TIMESTAMP_INVALID' || e.code === 'VERIFY_TIMESTAMP_UNTRUSTED';
  throw new SigningServiceError(
    tsa ? 'SIGNING_TSA_ANSWER_INVALID' : 'SIGNING_TLOG_ANSWER_INVALID',
    `The ${tsa ? 'timestamp authority' : 'transparency log'}'s answer does not verify with the trusted root, so nothing was pushed: ${e.message} (${e.code})`,
    { cause: e },
  );
}

/**
 * The bundle for a DSSE-signed statement, logged and timestamped as `s` says, verified whole.
 * @param imageDigest `sha256:<hex>` the statement names.
 * @returns the bundle's bytes, ready to push.
 * @throws SigningServiceError SIGNING_TLOG_* and SIGNING_TSA_* (unreachable, refused, an answer
 *   that does not verify against the root).
 */
export async function witnessedBundle(
  s: SigningServices,
  o: {
    hint: string | { certificate: Uint8Array };
    payloadType: string;
    statement: Uint8Array;
    signature: Uint8Array;
    spki: Uint8Array;
    /** A keyless signer's certificate: logged as the verifier, and the bundle checked for its identity. */
    certificate?: SignerCertificate;
  },
  imageDigest: string,
): Promise<Uint8Array> {
  const { algorithm } = parseSpki(o.spki);
  const [entry, stamp] = await Promise.all([
    s.rekor
      ? logToRekorV2(s.fetch, s.rekor.url, {
          digest: sha256Bytes(pae(o.payloadType, o.statement)),
          signature: o.signature,
          spki: o.spki,
          algorithm,
          ...(o.certificate ? { certificate: o.certificate.leaf } : {}),
        })
      : undefined,
    s.tsa ? requestTimestamp(s.fetch, s.tsa.url, sha256Bytes(o.signature)) : undefined,
  ]);
  const bytes = buildDsseBundle(o.hint, o.payloadType, o.statement, o.signature, {
    ...(entry ? { tlogEntries: [entry] } : {}),
    ...(stamp ? { rfc3161Timestamps: [stamp] } : {}),
  });
  try {
    await verifyBundle(parseSigstoreBundle(bytes), {
      root: s.root,
      ...(o.certificate
        ? {
            policy: {
              certificateIdentity: o.certificate.identity,
              certificateOidcIssuer: o.certificate.issuer,
            },
          }
        : { key: o.spki }),
      artifact: { sha256: fromHex(imageDigest.slice('sha256:'.length))! },
      tlog: entry ? 'require' : 'ignore',
      now: (s.now ?? (() => new Date()))(),
    });
  } catch (e) {
    answerRefused(e);
  }
  return bytes;
}

/**
 * The legacy layer's extra annotations: a verified RFC 3161 timestamp over the signature, when a
 * timestamp authority is used; none otherwise.
 * @throws SigningServiceError SIGNING_TSA_UNREACHABLE, SIGNING_TSA_REFUSED, SIGNING_TSA_ANSWER_INVALID
 */
export async function legacyWitnessAnnotations(
  s: SigningServices,
  signature: Uint8Array,
): Promise<Record<string, string>> {
  if (!s.tsa) return {};
  const response = await requestTimestamp(s.fetch, s.tsa.url, sha256Bytes(signature));
  try {
    await verifyRfc3161Timestamp(response, signature, s.root.timestampAuthorities);
  } catch (e) {
    answerRefused(e);
  }
  return { [TIMESTAMP_ANNOTATION]: goJson({ SignedRFC3161Timestamp: toBase64(response) }) };
}
