/**
 * Certificate paths as sigstore-go (pkg/verify/certificate.go, Go's crypto/x509 Verify) builds
 * them: from the leaf, through a trusted authority's chain (its intermediates, then its root),
 * each signature by the next certificate's key, every certificate valid at the time judged,
 * issuers marked CA with keyCertSign and within their path length, no unknown critical extension,
 * and the leaf not a CA and meant for code signing (Fulcio's) or another usage asked for (a
 * timestamp authority's). An authority counts only within its own validity in the trusted root.
 * No revocation: Sigstore's certificates are short-lived instead.
 */
import { VerificationError } from '../errors.ts';
import { signatureScheme, verifySpkiSignature } from '../crypto/verify-spki.ts';
import { CODE_SIGNING_EKU, parseCertificate, type Certificate } from './certificate.ts';
import { validAt } from './trusted-root.ts';
import type { TrustedAuthority } from './types.ts';

export interface ChainOptions {
  /** The extended key usage the leaf must carry (default code signing); null for none. */
  leafUsage?: string | null;
}

export interface VerifiedChain {
  authority: TrustedAuthority;
  /** Leaf first, the authority's root last. */
  path: Certificate[];
}

type Attempt = { ok: true; path: Certificate[] } | { ok: false; expired: boolean; why: string };

const parsed = new WeakMap<TrustedAuthority, Certificate[]>();

function authorityCerts(a: TrustedAuthority): Certificate[] {
  let certs = parsed.get(a);
  if (!certs) {
    certs = a.certChain.map(parseCertificate);
    parsed.set(a, certs);
  }
  return certs;
}

async function signedBy(child: Certificate, issuer: Certificate): Promise<boolean> {
  if (child.issuer !== issuer.subject) return false;
  const scheme = signatureScheme(child.signatureAlgorithm, child.signatureParams);
  if (!scheme) return false;
  try {
    return await verifySpkiSignature(issuer.spki, scheme, child.tbs, child.signature);
  } catch {
    return false;
  }
}

function timeProblem(c: Certificate, at: Date, role: string): string | null {
  if (at < c.notBefore || at > c.notAfter)
    return `the ${role} certificate (${c.subject || 'no subject'}) is valid from ${c.notBefore.toISOString()} to ${c.notAfter.toISOString()}, not at ${at.toISOString()}`;
  return null;
}

function leafProblem(leaf: Certificate, usage: string | null): string | null {
  if (leaf.isCA) return 'the signing certificate is a CA certificate';
  if (usage && !leaf.extKeyUsage.includes(usage) && !leaf.extKeyUsage.includes('2.5.29.37.0'))
    return `the signing certificate is not meant for this use (extended key usage ${usage} missing)`;
  if (leaf.unknownCritical.length)
    return `the signing certificate has an unknown critical extension ${leaf.unknownCritical[0]}`;
  return null;
}

function issuerProblem(issuer: Certificate, casBelow: number): string | null {
  if (!issuer.isCA) return `${issuer.subject} is not a CA certificate`;
  if (issuer.keyUsage && !issuer.keyUsage.keyCertSign) return `${issuer.subject} may not sign certificates`;
  if (issuer.pathLenConstraint !== undefined && casBelow > issuer.pathLenConstraint)
    return `${issuer.subject} allows ${issuer.pathLenConstraint} CA certificates below it, not ${casBelow}`;
  if (issuer.unknownCritical.length) return `${issuer.subject} has an unknown critical extension`;
  return null;
}

/** Walks from the leaf up the authority's chain; structural problems first, then time. */
async function tryAuthority(leaf: Certificate, a: TrustedAuthority, at: Date, usage: string | null): Promise<Attempt> {
  const certs = authorityCerts(a);
  const path = [leaf];
  let current = leaf;
  for (let depth = 0; depth <= certs.length; depth++) {
    if (current !== leaf && current.subject === current.issuer) break; // reached the root
    let next: Certificate | undefined;
    for (const c of certs) if (!path.includes(c) && (await signedBy(current, c))) next = c;
    if (!next)
      return { ok: false, expired: false, why: `no certificate of ${a.name} signed ${current.subject || 'the leaf'}` };
    const problem = issuerProblem(next, path.length - 1);
    if (problem) return { ok: false, expired: false, why: problem };
    path.push(next);
    current = next;
  }
  if (current === leaf || current.subject !== current.issuer)
    return { ok: false, expired: false, why: `the chain of ${a.name} does not end at a root` };
  const lp = leafProblem(leaf, usage);
  if (lp) return { ok: false, expired: false, why: lp };
  for (const [i, c] of path.entries()) {
    const t = timeProblem(c, at, i === 0 ? 'signing' : i === path.length - 1 ? 'root' : 'intermediate');
    if (t) return { ok: false, expired: true, why: t };
  }
  return { ok: true, path };
}

/**
 * Finds a path from `leaf` to a trusted authority valid at `at`.
 * @throws VerificationError VERIFY_CERTIFICATE_EXPIRED (a path exists, a certificate on it is not
 *   valid at `at`), VERIFY_CERTIFICATE_UNTRUSTED (no path to a trusted authority valid then),
 *   VERIFY_CERTIFICATE_INVALID (a certificate of the root cannot be read).
 */
export async function verifyCertificateChain(
  leaf: Certificate,
  authorities: TrustedAuthority[],
  at: Date,
  opts: ChainOptions = {},
): Promise<VerifiedChain> {
  const usage = opts.leafUsage === undefined ? CODE_SIGNING_EKU : opts.leafUsage;
  const failures: { expired: boolean; why: string }[] = [];
  for (const a of authorities) {
    if (!validAt(a.validFor, at)) {
      failures.push({ expired: false, why: `${a.name} is not trusted at ${at.toISOString()}` });
      continue;
    }
    const r = await tryAuthority(leaf, a, at, usage);
    if (r.ok) return { authority: a, path: r.path };
    failures.push(r);
  }
  const expired = failures.find((f) => f.expired);
  if (expired)
    throw new VerificationError('VERIFY_CERTIFICATE_EXPIRED', `The certificate is not valid then: ${expired.why}.`);
  const why =
    failures
      .map((f) => f.why)
      .slice(0, 3)
      .join('; ') || 'the trust root names no certificate authority';
  throw new VerificationError(
    'VERIFY_CERTIFICATE_UNTRUSTED',
    `The certificate does not chain to a trusted authority: ${why}.`,
  );
}
