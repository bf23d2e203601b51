/**
 * Certificate paths as sigstore-go builds them (pkg/root/certificate_authority.go: Go's
 * crypto/x509 Verify with the authority's root as the only root and its other certificates as
 * intermediates): an authority counts only when its validity in the trusted root holds the time
 * judged; from the leaf, each certificate is signed by the next one's key (issuer and subject
 * names equal byte for byte), up to the authority's self-signed root; issuers are CA certificates
 * allowed to sign certificates and within their path length; no certificate has a critical
 * extension Go would not handle; the leaf is no CA and carries the extended key usage asked
 * (code signing, as Fulcio issues and cosign demands), which every certificate's own extended key
 * usages must allow (Go's nesting rule); and every certificate on the path is valid at that time.
 * No revocation: Sigstore's certificates are short-lived instead.
 * https://github.com/sigstore/sigstore-go/blob/main/pkg/verify/certificate.go
 */
import { VerificationError } from '../errors.ts';
import { bytesEqual } from '../encoding/base64.ts';
import { signatureAlgorithm, verifyWithAlgorithm } from '../crypto/verify-spki.ts';
import { CODE_SIGNING_EKU, parseCertificate, type Certificate } from './certificate.ts';
import { validAt } from './trusted-root.ts';
import type { TrustedAuthority } from './types.ts';

const ANY_EKU = '2.5.29.37.0';

export interface ChainOptions {
  /** Whether the leaf must carry the code-signing extended key usage (default true). */
  requireCodeSigning?: boolean;
  /** Another extended key usage the leaf must carry instead (a timestamp authority's); null for none. */
  leafUsage?: string | null;
}

export interface VerifiedChain {
  authority: TrustedAuthority;
  /** Leaf first, the authority's root last. */
  path: Certificate[];
}

const parsed = new WeakMap<TrustedAuthority, Certificate[]>();

function authorityCerts(a: TrustedAuthority): Certificate[] {
  let certs = parsed.get(a);
  if (!certs) {
    certs = a.certChain.map(parseCertificate);
    parsed.set(a, certs);
  }
  return certs;
}

/**
 * Signature checks made before, per certificate and issuer: a certificate is judged at each
 * verified time (a log's and a timestamp's), and verified again with the next image; parseCertificate
 * hands back the same objects for the same DER, and their bytes never change.
 */
const checked = new WeakMap<Certificate, WeakMap<Certificate, Promise<boolean>>>();

/** Whether `issuer`'s key signed `child` (a key that cannot be used signs nothing). */
function signedBy(child: Certificate, issuer: Certificate): Promise<boolean> {
  if (!bytesEqual(child.issuerDer, issuer.subjectDer)) return Promise.resolve(false);
  const alg = signatureAlgorithm(child.signatureAlgorithm, child.signatureParams);
  if (!alg) return Promise.resolve(false);
  let byIssuer = checked.get(child);
  if (!byIssuer) checked.set(child, (byIssuer = new WeakMap()));
  let p = byIssuer.get(issuer);
  if (!p) {
    p = verifyWithAlgorithm(issuer.spki, alg, child.tbs, child.signature);
    byIssuer.set(issuer, p);
    p.catch(() => byIssuer.delete(issuer)); // a failure to check (no WebCrypto) is not an answer
  }
  return p;
}

const who = (c: Certificate): string => (c.subject ? `"${c.subject}"` : 'the signing certificate');

/** Go's EKU nesting: a certificate with extended key usages must allow `usage` (or any). */
function allowsUsage(c: Certificate, usage: string | null): boolean {
  return !usage || c.extKeyUsage.length === 0 || c.extKeyUsage.includes(usage) || c.extKeyUsage.includes(ANY_EKU);
}

function leafProblem(leaf: Certificate, usage: string | null): string | null {
  if (leaf.isCA) return 'the signing certificate is a CA certificate';
  if (usage && !leaf.extKeyUsage.includes(usage) && !leaf.extKeyUsage.includes(ANY_EKU))
    return `the signing certificate does not carry the extended key usage ${usage}${usage === CODE_SIGNING_EKU ? ' (code signing)' : ''}`;
  if (leaf.unknownCritical.length)
    return `the signing certificate has a critical extension this verifier does not handle (${leaf.unknownCritical.join(', ')})`;
  return null;
}

/** Why `issuer` may not issue a certificate with `casBelow` CA certificates under it, or null. */
function issuerProblem(issuer: Certificate, casBelow: number, usage: string | null): string | null {
  if (!issuer.isCA) return `${who(issuer)} is not a CA certificate`;
  if (issuer.keyUsage && !issuer.keyUsage.keyCertSign) return `${who(issuer)} may not sign certificates`;
  if (issuer.pathLenConstraint !== undefined && casBelow > issuer.pathLenConstraint)
    return `${who(issuer)} allows ${issuer.pathLenConstraint} CA certificate(s) below it, not ${casBelow}`;
  if (issuer.unknownCritical.length) return `${who(issuer)} has a critical extension this verifier does not handle`;
  if (!allowsUsage(issuer, usage)) return `${who(issuer)} does not allow the extended key usage ${usage}`;
  return null;
}

type Search = { path: Certificate[] } | { why: string };

/** Depth-first from `path`'s last certificate to `root` through `pool`, checking each issuer. */
async function extend(
  path: Certificate[],
  pool: Certificate[],
  root: Certificate,
  usage: string | null,
): Promise<Search> {
  const current = path[path.length - 1]!;
  let why = `nothing in the chain signed ${who(current)}`;
  for (const next of pool) {
    if (path.includes(next) || !(await signedBy(current, next))) continue;
    const problem = issuerProblem(next, path.length - 1, usage);
    if (problem) {
      why = problem;
      continue;
    }
    if (next === root) return { path: [...path, root] };
    const found = await extend([...path, next], pool, root, usage);
    if ('path' in found) return found;
    why = found.why;
  }
  return { why };
}

const rootChecked = new WeakMap<TrustedAuthority, Promise<string | null>>();

/** Why the authority's last certificate is not a self-signed root, or null. */
function rootProblem(a: TrustedAuthority, root: Certificate): Promise<string | null> {
  let p = rootChecked.get(a);
  if (!p) {
    p = signedBy(root, root).then((ok) => (ok ? null : `the root of ${a.name} is not self-signed`));
    rootChecked.set(a, p);
  }
  return p;
}

type Attempt = { path: Certificate[] } | { why: string; expired?: boolean };

function timeProblem(path: Certificate[], at: Date): string | null {
  for (const [i, c] of path.entries()) {
    if (at >= c.notBefore && at <= c.notAfter) continue;
    const role = i === 0 ? 'signing' : i === path.length - 1 ? 'root' : 'intermediate';
    const name = c.subject ? ` ${JSON.stringify(c.subject)}` : '';
    return `the ${role} certificate${name} is valid from ${c.notBefore.toISOString()} to ${c.notAfter.toISOString()}, not at ${at.toISOString()}`;
  }
  return null;
}

async function tryAuthority(leaf: Certificate, a: TrustedAuthority, at: Date, usage: string | null): Promise<Attempt> {
  if (!validAt(a.validFor, at)) return { why: `${a.name} is not trusted at ${at.toISOString()}` };
  const pool = authorityCerts(a);
  const root = pool[pool.length - 1];
  if (!root) return { why: `${a.name} lists no certificate` };
  const rp = await rootProblem(a, root);
  if (rp) return { why: rp };
  const found = await extend([leaf], pool, root, usage);
  if (!('path' in found)) return { why: `${a.name}: ${found.why}` };
  const late = timeProblem(found.path, at);
  return late ? { why: late, expired: true } : found;
}

/**
 * Finds a path from `leaf` to a trusted authority valid at `at` (see the file's header).
 * `opts.requireCodeSigning` (default true) asks the code-signing extended key usage of the leaf;
 * `opts.leafUsage` asks another one instead (null: none). A private PKI (cosign's --ca-roots) is an
 * authority with an open validity.
 * @throws VerificationError VERIFY_NO_VERIFIED_TIME (`at` is an invalid Date),
 *   VERIFY_CERTIFICATE_INVALID (the leaf is a CA, lacks the extended key
 *   usage, has an unhandled critical extension, or a certificate of an authority cannot be read),
 *   VERIFY_CERTIFICATE_EXPIRED (a path exists but a certificate on it is not valid at `at`: which,
 *   and its dates), VERIFY_CERTIFICATE_UNTRUSTED (no path to an authority valid at `at`).
 */
export async function verifyCertificateChain(
  leaf: Certificate,
  authorities: TrustedAuthority[],
  at: Date,
  opts: ChainOptions = {},
): Promise<VerifiedChain> {
  const usage =
    opts.leafUsage !== undefined ? opts.leafUsage : opts.requireCodeSigning === false ? null : CODE_SIGNING_EKU;
  if (Number.isNaN(at.getTime()))
    throw new VerificationError('VERIFY_NO_VERIFIED_TIME', 'There is no valid time to judge the certificate at.');
  const lp = leafProblem(leaf, usage);
  if (lp) throw new VerificationError('VERIFY_CERTIFICATE_INVALID', `The certificate cannot sign here: ${lp}.`);
  const failures: { why: string; expired?: boolean }[] = [];
  for (const a of authorities) {
    const r = await tryAuthority(leaf, a, at, usage);
    if ('path' in r) return { authority: a, path: r.path };
    failures.push(r);
  }
  const expired = failures.find((f) => f.expired);
  if (expired)
    throw new VerificationError('VERIFY_CERTIFICATE_EXPIRED', `The certificate is not valid then: ${expired.why}.`);
  const why = failures.map((f) => f.why).join('; ') || 'the trust root names no certificate authority';
  throw new VerificationError(
    'VERIFY_CERTIFICATE_UNTRUSTED',
    `The certificate does not chain to a trusted authority: ${why}.`,
  );
}
