/**
 * Who signed a bundle: the key the viewer gave, or a certificate that chains to a trusted
 * certificate authority at every verified time, carries an SCT from a trusted CT log (Sigstore
 * roots; not a private PKI, as cosign's --ca-roots), and names an identity the policy accepts.
 */
import { VerificationError } from '../errors.ts';
import { fingerprint } from '../crypto/webcrypto.ts';
import { bytesEqual } from '../encoding/base64.ts';
import type { SigstoreBundle, TrustedAuthority, VerifiedTime } from './types.ts';
import { certificateFacts, parseCertificate, type Certificate } from './certificate.ts';
import { verifyCertificateChain } from './chain.ts';
import { verifyEmbeddedScts } from './sct.ts';
import { checkIdentity, compileIdentityPolicy, hasIdentityPolicy, type CertificateFacts } from './policy.ts';
import { checkSubject } from './subject.ts';
import type { TlogRule, VerifyBundleOptions } from './verify-options.ts';

export type SignerResult =
  | { kind: 'key'; fingerprint: string }
  | ({
      kind: 'certificate';
      /** The SAN the policy matched first (cosign shows the first). */
      identity: string;
      /** The certificate authority, by its name in the root (or "private PKI"). */
      authority: string;
      serialNumber: string;
      notBefore: string;
      notAfter: string;
      /** CT logs whose SCT verified (their base URLs). */
      scts: string[];
    } & CertificateFacts);

function selfSigned(c: Certificate): boolean {
  return bytesEqual(c.subjectDer, c.issuerDer);
}

/** The times a certificate is judged at. @throws VerificationError VERIFY_NO_VERIFIED_TIME */
function judgeTimes(times: VerifiedTime[], rule: TlogRule, now: Date): Date[] {
  if (times.length) return times.map((t) => t.time);
  if (rule === 'ignore') return [now];
  throw new VerificationError(
    'VERIFY_NO_VERIFIED_TIME',
    'A short-lived certificate needs a verified time — a transparency-log entry with its integrated time, or an RFC 3161 timestamp — and this signature has neither.',
  );
}

/** The authorities a certificate may chain to (with the signature's chain as intermediates, when asked). */
function authoritiesFor(opts: VerifyBundleOptions, chain: Uint8Array[]): TrustedAuthority[] {
  if (!opts.privateCAs) return opts.root.certificateAuthorities;
  if (!opts.chainIntermediates || chain.length === 0) return opts.privateCAs;
  return opts.privateCAs.map((a) => ({ ...a, certChain: [...chain, ...a.certChain] }));
}

async function certificateSigner(
  bundle: SigstoreBundle & { signer: { kind: 'certificate' } },
  opts: VerifyBundleOptions,
  times: VerifiedTime[],
  rule: TlogRule,
  now: Date,
  warnings: string[],
): Promise<{ spki: Uint8Array; result: SignerResult }> {
  if (!opts.policy || !hasIdentityPolicy(opts.policy))
    throw new VerificationError(
      'VERIFY_POLICY_INVALID',
      'This signature carries a certificate: give the identity and OIDC issuer it must name (a certificate alone proves nothing).',
    );
  const policy = compileIdentityPolicy(opts.policy);
  warnings.push(...policy.warnings);
  const leaf = parseCertificate(bundle.signer.certificate);
  for (const der of bundle.signer.chain)
    if (selfSigned(parseCertificate(der)))
      throw new VerificationError(
        'VERIFY_CERTIFICATE_UNTRUSTED',
        "The bundle's certificate chain includes a root certificate; roots are trusted only from the trusted root.",
      );
  const authorities = authoritiesFor(opts, bundle.signer.chain);
  let chain: Awaited<ReturnType<typeof verifyCertificateChain>> | undefined;
  for (const at of judgeTimes(times, rule, now)) chain = await verifyCertificateChain(leaf, authorities, at);
  const issuerCert = chain!.path[1];
  let scts: string[] = [];
  if (!opts.privateCAs && issuerCert) {
    if (opts.root.ctlogs.length)
      scts = (await verifyEmbeddedScts(leaf, issuerCert, opts.root.ctlogs)).map((s) => s.log.baseUrl);
    else warnings.push('The trusted root lists no CT log, so the certificate was not checked for an SCT.');
  }
  const facts = certificateFacts(leaf);
  const reason = policy.subject ? checkSubject(leaf, policy.subject) : checkIdentity(facts, policy);
  if (reason) throw new VerificationError(reason.code as 'VERIFY_IDENTITY_MISMATCH', reason.message);
  return {
    spki: leaf.spki,
    result: {
      kind: 'certificate',
      identity: facts.identities.find((id) => policy.identity.test(id)) ?? policy.subject?.hostname ?? '',
      ...facts,
      authority: opts.privateCAs ? 'private PKI' : chain!.authority.name,
      serialNumber: leaf.serialNumber,
      notBefore: leaf.notBefore.toISOString(),
      notAfter: leaf.notAfter.toISOString(),
      scts,
    },
  };
}

/**
 * @throws VerificationError as described in the header; KeyError for a key that cannot be read.
 */
export async function verifySigner(
  bundle: SigstoreBundle,
  opts: VerifyBundleOptions,
  times: VerifiedTime[],
  rule: TlogRule,
  now: Date,
  warnings: string[],
): Promise<{ spki: Uint8Array; kind: 'key' | 'certificate'; result: SignerResult }> {
  if (bundle.signer.kind === 'certificate') {
    const r = await certificateSigner(
      bundle as SigstoreBundle & { signer: { kind: 'certificate' } },
      opts,
      times,
      rule,
      now,
      warnings,
    );
    return { ...r, kind: 'certificate' };
  }
  const key = opts.key!; // verify-tlog.ts's signerDer has refused a key bundle without a key
  return { spki: key, kind: 'key', result: { kind: 'key', fingerprint: fingerprint(key).hex } };
}
