/**
 * Logging and timestamping a signature while signing (the "Transparency log" and "Timestamp
 * authority" options of the sign page), then verifying every answer against the trusted root
 * before sign.ts pushes anything — what cosign 3.1 `sign --signing-config --trusted-root` does:
 *
 * - bundle format: the DSSE envelope's signature is logged to Rekor v2 as a hashedrekord 0.0.2
 *   over SHA-256 of its PAE (Rekor v2 takes no DSSE entries; cosign 3.1 logs it so), or to Rekor v1
 *   as a dsse 0.0.1 entry (the envelope and the signer's PEM, as sigstore-go's sign package logs
 *   it), and timestamped over the signature bytes; the entry and the timestamp go into the bundle's
 *   verificationMaterial, and the finished bundle is verified whole (shared/sigstore/verify-bundle.ts
 *   with the log required): signature, entry body, inclusion proof, checkpoint, log of the root,
 *   timestamp by an authority of the root;
 * - legacy `.sig` format: the timestamp over the signature bytes goes into the layer's
 *   `dev.sigstore.cosign/rfc3161timestamp` annotation (`{"SignedRFC3161Timestamp":"<b64>"}`),
 *   verified with the root's timestamp authorities. With a Rekor v1 log, the signature is logged as
 *   cosign logs it (hashedrekord 0.0.1: SHA-256 of the payload, the signature, the PEM key or
 *   certificate) and the answer goes into `dev.sigstore.cosign/bundle` as cosign's RekorBundle
 *   (`{"SignedEntryTimestamp","Payload":{"body","integratedTime","logIndex","logID"}}`); the
 *   layer's annotations are then read back and verified as `#/verify` reads a legacy layer
 *   (cosign/legacy-sigstore.ts, then verify-bundle.ts with the log required). A Rekor v2 entry has
 *   no place in a legacy layer (no SET), so with a v2 log the legacy signature is not logged.
 *
 * Loaded only when a signing uses a service (so the page's first load carries no verifier).
 */
import { SigningServiceError, VerificationError } from '../errors.ts';
import { fromHex, toBase64 } from '../encoding/base64.ts';
import { sha256Bytes } from '../crypto/digest.ts';
import { parseSpki } from '../crypto/pkcs.ts';
import { publicKeyPem } from '../crypto/keys.ts';
import { encodePem } from '../encoding/pem.ts';
import { buildDsseBundle } from '../cosign/bundle.ts';
import { pae } from '../cosign/dsse.ts';
import { goJson } from '../cosign/strict-json.ts';
import { BUNDLE_ANNOTATION } from '../cosign/manifests.ts';
import { TIMESTAMP_ANNOTATION, legacySigstoreBundle } from '../cosign/legacy-sigstore.ts';
import { parseSigstoreBundle } from '../sigstore/bundle.ts';
import {
  dsseV001,
  hashedRekordV001,
  logToRekorV1,
  logToRekorV2,
  rekorKeyDetails,
  requestTimestamp,
  type ServiceFetch,
  type TlogEntryJson,
} from '../sigstore/services.ts';
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
  /** A Rekor log: v2 (majorApiVersion 2) or v1 (1, which gives legacy layers a SET too). */
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

/** The signer as a log entry names it in PEM: the certificate when keyless, else the public key. */
function signerPem(spki: Uint8Array, certificate: SignerCertificate | undefined): string {
  return certificate ? encodePem('CERTIFICATE', certificate.leaf) : publicKeyPem(spki);
}

/** Who the finished signature must verify as: the certificate's identity, or the key. */
function signerCheck(spki: Uint8Array, certificate: SignerCertificate | undefined) {
  return certificate
    ? { policy: { certificateIdentity: certificate.identity, certificateOidcIssuer: certificate.issuer } }
    : { key: spki };
}

/** The bundle's log entry: Rekor v1 (dsse 0.0.1) or v2 (hashedrekord 0.0.2 over the PAE). */
async function bundleEntry(
  s: SigningServices & { rekor: SigningService },
  o: { payloadType: string; statement: Uint8Array; signature: Uint8Array; spki: Uint8Array },
  certificate: SignerCertificate | undefined,
): Promise<TlogEntryJson> {
  const { algorithm } = parseSpki(o.spki);
  if (s.rekor.majorApiVersion === 1) {
    rekorKeyDetails(algorithm, 1);
    const envelope = { payload: o.statement, payloadType: o.payloadType, signature: o.signature };
    return (await logToRekorV1(s.fetch, s.rekor.url, dsseV001(envelope, signerPem(o.spki, certificate)))).bundle;
  }
  return logToRekorV2(s.fetch, s.rekor.url, {
    digest: sha256Bytes(pae(o.payloadType, o.statement)),
    signature: o.signature,
    spki: o.spki,
    algorithm,
    ...(certificate ? { certificate: certificate.leaf } : {}),
  });
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
  const rekor = s.rekor;
  const [entry, stamp] = await Promise.all([
    rekor ? bundleEntry({ ...s, rekor }, o, o.certificate) : undefined,
    s.tsa ? requestTimestamp(s.fetch, s.tsa.url, sha256Bytes(o.signature)) : undefined,
  ]);
  const bytes = buildDsseBundle(o.hint, o.payloadType, o.statement, o.signature, {
    ...(entry ? { tlogEntries: [entry] } : {}),
    ...(stamp ? { rfc3161Timestamps: [stamp] } : {}),
  });
  try {
    await verifyBundle(parseSigstoreBundle(bytes), {
      root: s.root,
      ...signerCheck(o.spki, o.certificate),
      artifact: { sha256: fromHex(imageDigest.slice('sha256:'.length))! },
      tlog: entry ? 'require' : 'ignore',
      now: (s.now ?? (() => new Date()))(),
    });
  } catch (e) {
    answerRefused(e);
  }
  return bytes;
}

/** What a legacy layer is: its simple-signing payload, the signature over it, its signer, its annotations so far. */
export interface LegacySignature {
  payload: Uint8Array;
  signature: Uint8Array;
  spki: Uint8Array;
  certificate?: SignerCertificate;
  /** The layer's annotations before witnessing (the signature; the certificate and chain when keyless). */
  annotations: Record<string, string>;
}

/** The legacy signature logged to Rekor v1, as cosign's `dev.sigstore.cosign/bundle` annotation. */
async function legacyLogAnnotation(s: SigningServices & { rekor: SigningService }, l: LegacySignature) {
  rekorKeyDetails(parseSpki(l.spki).algorithm, 1);
  const proposed = hashedRekordV001(sha256Bytes(l.payload), l.signature, signerPem(l.spki, l.certificate));
  const { legacy: e } = await logToRekorV1(s.fetch, s.rekor.url, proposed);
  // Field order as cosign's RekorBundle and RekorPayload structs marshal.
  const json = goJson({
    SignedEntryTimestamp: e.signedEntryTimestamp,
    Payload: { body: e.body, integratedTime: e.integratedTime, logIndex: e.logIndex, logID: e.logId },
  });
  return { [BUNDLE_ANNOTATION]: json };
}

/**
 * The legacy layer's extra annotations: with a Rekor v1 log, the entry and its SET
 * (`dev.sigstore.cosign/bundle`); with a timestamp authority, an RFC 3161 timestamp over the
 * signature (`dev.sigstore.cosign/rfc3161timestamp`); none otherwise (a Rekor v2 log logs only
 * the bundle). Verified before they are returned: with a v1 entry the layer is read back as
 * `#/verify` reads it and verified whole with the log required; a timestamp alone with the root's
 * timestamp authorities.
 * @throws SigningServiceError SIGNING_TLOG_* and SIGNING_TSA_* (unreachable, refused, an answer
 *   that does not verify against the root), SIGNING_TLOG_KEY_UNSUPPORTED.
 */
export async function legacyWitnessAnnotations(
  s: SigningServices,
  l: LegacySignature,
): Promise<Record<string, string>> {
  const rekor = s.rekor?.majorApiVersion === 1 ? s.rekor : undefined;
  const [logged, response] = await Promise.all([
    rekor ? legacyLogAnnotation({ ...s, rekor }, l) : undefined,
    s.tsa ? requestTimestamp(s.fetch, s.tsa.url, sha256Bytes(l.signature)) : undefined,
  ]);
  const out = {
    ...logged,
    ...(response ? { [TIMESTAMP_ANNOTATION]: goJson({ SignedRFC3161Timestamp: toBase64(response) }) } : {}),
  };
  try {
    if (logged) {
      const material = legacySigstoreBundle({ ...l.annotations, ...out }, l.payload, l.signature)!;
      await verifyBundle(material, {
        root: s.root,
        ...signerCheck(l.spki, l.certificate),
        artifact: { sha256: sha256Bytes(l.payload), bytes: l.payload },
        tlog: 'require',
        now: (s.now ?? (() => new Date()))(),
      });
    } else if (response) await verifyRfc3161Timestamp(response, l.signature, s.root.timestampAuthorities);
  } catch (e) {
    answerRefused(e);
  }
  return out;
}
