/**
 * Certificates made by the real `openssl` (req, x509) at test time, into a temp dir, for the
 * certificate and chain tests: keys of every kind Sigstore meets (ECDSA P-256/P-384, RSA, Ed25519),
 * self-signed roots, certificates issued by another with the extensions given as an openssl
 * extension section (so Fulcio's extensions are written by openssl, not by us). Node only.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parsePemCertificates } from '../../../../shared/sigstore/certificate.ts';

export type KeyKind = 'p256' | 'p384' | 'rsa' | 'ed25519';

export interface Issued {
  name: string;
  der: Uint8Array;
  pem: string;
  keyPath: string;
  certPath: string;
}

export interface IssueOptions {
  key: KeyKind;
  subject: string;
  /** Lines of an openssl extension section (`basicConstraints = critical,CA:TRUE`, …). */
  ext: string[];
  /** The issuer; absent for a self-signed certificate. */
  issuer?: Issued;
  days?: number;
  /** openssl's -sha256/-sha384/-sha512, or RSA-PSS (salt = digest length) with the issuer's RSA key. */
  digest?: 'sha256' | 'sha384' | 'sha512';
  pss?: boolean;
}

const KEY_ARGS: Record<KeyKind, string[]> = {
  p256: ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256'],
  p384: ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-384'],
  rsa: ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048'],
  ed25519: ['-algorithm', 'ED25519'],
};

/** The openssl to run: $OPENSSL, else the one on the PATH. */
const OPENSSL = process.env['OPENSSL'] ?? 'openssl';

/** The hex of a string's bytes, for openssl's `DER:` extension values (raw, not DER-wrapped). */
export const rawHex = (s: string): string => Buffer.from(s, 'utf8').toString('hex');

/** A temp dir of openssl-made certificates; `close()` removes it. */
export class OpensslPki {
  readonly dir = mkdtempSync(join(tmpdir(), 'cosign-web-pki-'));
  #serial = 1;

  #openssl(args: string[]): void {
    execFileSync(OPENSSL, args, { cwd: this.dir, stdio: ['ignore', 'ignore', 'pipe'] });
  }

  issue(name: string, o: IssueOptions): Issued {
    const keyPath = join(this.dir, `${name}.key`);
    const certPath = join(this.dir, `${name}.pem`);
    const cfg = join(this.dir, `${name}.cnf`);
    writeFileSync(cfg, ['[req]', 'distinguished_name = dn', '[dn]', '[ext]', ...o.ext, ''].join('\n'));
    this.#openssl(['genpkey', ...KEY_ARGS[o.key], '-out', keyPath]);
    const days = String(o.days ?? 30);
    const digest = o.digest ? [`-${o.digest}`] : [];
    if (!o.issuer) {
      this.#openssl([
        'req',
        '-x509',
        '-new',
        '-config',
        cfg,
        '-extensions',
        'ext',
        '-key',
        keyPath,
        '-subj',
        o.subject,
        '-days',
        days,
        ...digest,
        '-set_serial',
        String(this.#serial++),
        '-out',
        certPath,
      ]);
    } else {
      const csr = join(this.dir, `${name}.csr`);
      this.#openssl(['req', '-new', '-config', cfg, '-key', keyPath, '-subj', o.subject, '-out', csr]);
      const pss = o.pss ? ['-sigopt', 'rsa_padding_mode:pss', '-sigopt', 'rsa_pss_saltlen:digest'] : [];
      this.#openssl([
        'x509',
        '-req',
        '-in',
        csr,
        '-CA',
        o.issuer.certPath,
        '-CAkey',
        o.issuer.keyPath,
        '-extfile',
        cfg,
        '-extensions',
        'ext',
        '-days',
        days,
        ...digest,
        ...pss,
        '-set_serial',
        String(this.#serial++),
        '-out',
        certPath,
      ]);
    }
    const pem = readFileSync(certPath, 'utf8');
    return { name, der: parsePemCertificates(pem)[0]!, pem, keyPath, certPath };
  }

  close(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export const CA_EXT = [
  'basicConstraints = critical,CA:TRUE',
  'keyUsage = critical,keyCertSign,cRLSign',
  'subjectKeyIdentifier = hash',
];

/** A Fulcio-like leaf: code signing, an email SAN, the username otherName and Fulcio's extensions. */
export const FULCIO_LEAF_EXT = [
  'basicConstraints = critical,CA:FALSE',
  'keyUsage = critical,digitalSignature',
  'extendedKeyUsage = codeSigning',
  'subjectAltName = email:alice@example.com,otherName:1.3.6.1.4.1.57264.1.7;UTF8:alice-user',
  'authorityKeyIdentifier = keyid',
  `1.3.6.1.4.1.57264.1.1 = DER:${rawHex('https://issuer.example')}`,
  '1.3.6.1.4.1.57264.1.8 = ASN1:UTF8String:https://issuer.example',
  `1.3.6.1.4.1.57264.1.2 = DER:${rawHex('push')}`,
  `1.3.6.1.4.1.57264.1.5 = DER:${rawHex('octo/repo')}`,
  '1.3.6.1.4.1.57264.1.9 = ASN1:UTF8String:https://github.com/octo/repo/.github/workflows/w.yml@refs/heads/main',
  '1.3.6.1.4.1.57264.1.22 = ASN1:UTF8String:public',
];
