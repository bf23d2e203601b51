/**
 * A certificate's subject judged as containers/image judges it for a containers-policy.json
 * `sigstoreSigned` requirement (signature/fulcio_cert.go, pki_cert.go): `fulcio` asks the OIDC
 * issuer (Fulcio's .1.1 and .1.8 extensions, which must agree when both are present) and an e-mail
 * SAN; `pki` asks an e-mail SAN and/or a host name the certificate is valid for (Go's
 * x509.Certificate.VerifyHostname over the DNS SANs: case-insensitive, a trailing dot ignored, a
 * `*` first label matching one label). An IP address as host name matches nothing here.
 */
import type { Reason } from '../errors.ts';
import type { Certificate } from './certificate.ts';

export interface CertificateSubject {
  email?: string;
  hostname?: string;
  /** The OIDC issuer asked (fulcio); absent for pki. */
  issuer?: string;
}

function issuerReason(c: Certificate, want: string): Reason | null {
  const { issuerV1, issuerV2 } = c.fulcio;
  if (issuerV1 !== undefined && issuerV2 !== undefined && issuerV1 !== issuerV2)
    return {
      code: 'VERIFY_ISSUER_MISMATCH',
      message: `The certificate's two OIDC issuer extensions disagree (${JSON.stringify(issuerV1)}, ${JSON.stringify(issuerV2)}).`,
    };
  const got = issuerV2 ?? issuerV1;
  if (got === want) return null;
  return {
    code: 'VERIFY_ISSUER_MISMATCH',
    message: `The certificate's OIDC issuer ${got === undefined ? '(none)' : JSON.stringify(got)} is not ${JSON.stringify(want)}.`,
  };
}

function labels(name: string): string[] {
  return name.toLowerCase().replace(/\.$/, '').split('.');
}

/** Go's matchHostnames, for one DNS SAN pattern. */
function hostMatches(pattern: string, host: string): boolean {
  const p = labels(pattern);
  const h = labels(host);
  if (p.length !== h.length || h.some((l) => l === '')) return false;
  return p.every((l, i) => l === h[i] || (i === 0 && l === '*'));
}

/**
 * Judges `c` against a containers-policy subject.
 * @returns null when it matches, else VERIFY_ISSUER_MISMATCH or VERIFY_IDENTITY_MISMATCH with why.
 */
export function checkSubject(c: Certificate, s: CertificateSubject): Reason | null {
  if (s.issuer !== undefined) {
    const bad = issuerReason(c, s.issuer);
    if (bad) return bad;
  }
  if (s.email !== undefined && !c.sanEmails.includes(s.email))
    return {
      code: 'VERIFY_IDENTITY_MISMATCH',
      message: `Required email ${JSON.stringify(s.email)} not found in the certificate (it names ${JSON.stringify(c.sanEmails)}).`,
    };
  if (s.hostname !== undefined && !c.sanDns.some((p) => p === s.hostname || hostMatches(p, s.hostname!)))
    return {
      code: 'VERIFY_IDENTITY_MISMATCH',
      message: `The certificate is not valid for the host name ${JSON.stringify(s.hostname)} (its DNS names: ${JSON.stringify(c.sanDns)}).`,
    };
  return null;
}
