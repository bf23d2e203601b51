// SoftHSM2 tokens for the PKCS#11 tests: a private SOFTHSM2_CONF with its own tokendir in a temp
// dir (the system's /etc/softhsm and /var/lib/softhsm are never touched), tokens initialised with
// `softhsm2-util --init-token --free`, key pairs generated inside the token with
// `pkcs11-tool --keypairgen` (the private keys never exist outside it), and each public key read
// back (RSA: `pkcs11-tool --read-object --type pubkey`, which writes the SubjectPublicKeyInfo DER;
// EC: from the CKA_EC_POINT and CKA_EC_PARAMS that --keypairgen prints, see ecSpkiFromListing).
// Checked with SoftHSM 2.6.1 and OpenSC 0.23.
//
// SoftHSM reads SOFTHSM2_CONF once, at C_Initialize: a process that loads the module sees the tokens
// of one conf. Put every token a test needs into one store (addToken) before loading the module.
import { createPublicKey } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { der, parseDer, TAG } from '../../shared/encoding/der.ts';
import { runOk } from './tools.ts';

/** Debian bookworm's softhsm2 package puts the module here. */
export const SOFTHSM_MODULE = '/usr/lib/softhsm/libsofthsm2.so';
export const SOFTHSM2_UTIL = '/usr/bin/softhsm2-util';
export const PKCS11_TOOL = '/usr/bin/pkcs11-tool';

/** pkcs11-tool's --key-type values for the algorithms cosign signs with. */
export type SoftHsmKeyType = 'EC:prime256v1' | 'EC:secp384r1' | 'rsa:2048';

/** Same wording as shared/crypto/pkcs.ts algorithmName. */
const ALGORITHM: Record<SoftHsmKeyType, string> = {
  'EC:prime256v1': 'ECDSA P-256',
  'EC:secp384r1': 'ECDSA P-384',
  'rsa:2048': 'RSA 2048',
};

export interface SoftHsmKeySpec {
  label: string;
  /** CKA_ID as hex, e.g. "01". */
  id: string;
  type: SoftHsmKeyType;
}

export interface SoftHsmKey {
  label: string;
  /** CKA_ID as hex. */
  id: string;
  /** "ECDSA P-256", "ECDSA P-384" or "RSA 2048". */
  algorithm: string;
  publicKeyPem: string;
  spki: Uint8Array;
}

export interface SoftHsmTokenOptions {
  tokenLabel?: string;
  pin?: string;
  soPin?: string;
  /** Default: one P-256 key labelled "cosign-web p256" with id 01. */
  keys?: readonly SoftHsmKeySpec[];
}

export interface SoftHsmTokenInfo {
  tokenLabel: string;
  pin: string;
  soPin: string;
  /** The token's serial number, manufacturer and model as SoftHSM reports them (trimmed). */
  serial: string;
  manufacturer: string;
  model: string;
  keys: SoftHsmKey[];
}

export interface SoftHsmToken extends SoftHsmTokenInfo {
  /** Absolute path of the PKCS#11 module. */
  module: string;
  /** The private softhsm2.conf. */
  conf: string;
  /** The temp dir holding the conf and the tokendir. */
  dir: string;
  /** What a process loading the module needs in its environment. */
  env: { SOFTHSM2_CONF: string };
  /** Another token in the same conf (a process that loads the module afterwards sees both). */
  addToken(options: SoftHsmTokenOptions): Promise<SoftHsmTokenInfo>;
  /** `softhsm2-util --delete-token`: the token disappears, as if it were unplugged. */
  deleteToken(label: string): Promise<void>;
  /** `pkcs11-tool --sign` in its own process: DER for ECDSA (--signature-format openssl). */
  toolSign(label: string, keyId: string, mechanism: 'ECDSA' | 'SHA256-RSA-PKCS', input: string): Promise<Uint8Array>;
  cleanup(): Promise<void>;
}

/**
 * Throws with a clear message when softhsm2-util, pkcs11-tool or the module is missing.
 * @throws Error naming the Debian package to install
 */
export function checkSoftHsmTools(): void {
  const missing: string[] = [];
  if (!existsSync(SOFTHSM2_UTIL)) missing.push(`${SOFTHSM2_UTIL} (Debian package softhsm2)`);
  if (!existsSync(SOFTHSM_MODULE)) missing.push(`${SOFTHSM_MODULE} (Debian package softhsm2)`);
  if (!existsSync(PKCS11_TOOL)) missing.push(`${PKCS11_TOOL} (Debian package opensc)`);
  if (missing.length > 0) {
    throw new Error(`SoftHSM tests need ${missing.join(' and ')}: run test/rig/install.sh (or apt-get install).`);
  }
}

const DEFAULT_KEYS: readonly SoftHsmKeySpec[] = [{ label: 'cosign-web p256', id: '01', type: 'EC:prime256v1' }];

function pem(spki: Uint8Array): string {
  const b64 = Buffer.from(spki).toString('base64');
  return `-----BEGIN PUBLIC KEY-----\n${b64.replace(/(.{64})/g, '$1\n').replace(/\n$/, '')}\n-----END PUBLIC KEY-----\n`;
}

/**
 * Makes a private SoftHSM store in a temp dir holding one token with the given keys.
 * @throws Error when a tool is missing or fails (its stderr in the message)
 */
export async function createSoftHsmToken(options: SoftHsmTokenOptions = {}): Promise<SoftHsmToken> {
  checkSoftHsmTools();
  const dir = await mkdtemp(join(tmpdir(), 'cosign-web-softhsm-'));
  const tokendir = join(dir, 'tokens');
  await mkdir(tokendir);
  const conf = join(dir, 'softhsm2.conf');
  await writeFile(conf, `directories.tokendir = ${tokendir}\nobjectstore.backend = file\nlog.level = ERROR\n`);
  const env = { SOFTHSM2_CONF: conf };
  const tool = (args: string[]) => runOk(PKCS11_TOOL, ['--module', SOFTHSM_MODULE, ...args], { env });
  const pins = new Map<string, string>();

  async function addToken(o: SoftHsmTokenOptions): Promise<SoftHsmTokenInfo> {
    const tokenLabel = o.tokenLabel ?? 'cosign-web';
    const pin = o.pin ?? '1234';
    const soPin = o.soPin ?? '12345678';
    await runOk(SOFTHSM2_UTIL, ['--init-token', '--free', '--label', tokenLabel, '--so-pin', soPin, '--pin', pin], {
      env,
    });
    pins.set(tokenLabel, pin);
    const keys: SoftHsmKey[] = [];
    for (const k of o.keys ?? DEFAULT_KEYS) {
      const made = await tool([
        '--token-label', tokenLabel, '--login', '--pin', pin,
        '--keypairgen', '--key-type', k.type, '--label', k.label, '--id', k.id,
      ]); // prettier-ignore
      let spki: Uint8Array;
      if (k.type.startsWith('EC:')) {
        spki = ecSpkiFromListing(made.stdout);
      } else {
        const out = join(dir, `pub-${tokenLabel.replace(/[^A-Za-z0-9]/g, '_')}-${k.id}.der`);
        await tool(['--token-label', tokenLabel, '--read-object', '--type', 'pubkey', '--id', k.id, '-o', out]);
        spki = new Uint8Array(await readFile(out));
      }
      // Node parses it, or the SPKI is malformed.
      createPublicKey({ key: Buffer.from(spki), format: 'der', type: 'spki' });
      keys.push({ label: k.label, id: k.id, algorithm: ALGORITHM[k.type], publicKeyPem: pem(spki), spki });
    }
    const list = await runOk(SOFTHSM2_UTIL, ['--show-slots'], { env });
    // "Token info:" blocks list "Label:" then, a few lines on, "Serial number:".
    const blocks = list.stdout.split(/\n(?=Slot )/);
    const block = blocks.find((b) => new RegExp(`^\\s*Label:\\s*${escapeRe(tokenLabel)}\\s*$`, 'm').test(b));
    const tokenInfo = block?.slice(block.indexOf('Token info:')) ?? '';
    const field = (name: string) => tokenInfo.match(new RegExp(`^\\s*${name}:\\s*(.*?)\\s*$`, 'm'))?.[1];
    const serial = field('Serial number');
    const manufacturer = field('Manufacturer ID');
    const model = field('Model');
    if (serial === undefined || manufacturer === undefined || model === undefined) {
      throw new Error(`softhsm2-util --show-slots does not list the token ${tokenLabel}`);
    }
    return { tokenLabel, pin, soPin, serial, manufacturer, model, keys };
  }

  try {
    const first = await addToken(options);
    return {
      ...first,
      module: SOFTHSM_MODULE,
      conf,
      dir,
      env,
      addToken,
      async deleteToken(label) {
        await runOk(SOFTHSM2_UTIL, ['--delete-token', '--token', label], { env });
      },
      async toolSign(label, keyId, mechanism, input) {
        const out = join(dir, `sig-${process.pid}-${Math.random().toString(16).slice(2)}.bin`);
        const pin = pins.get(label) ?? '';
        await tool([
          '--token-label', label, '--login', '--pin', pin, '--sign', '--id', keyId, '--mechanism', mechanism,
          ...(mechanism === 'ECDSA' ? ['--signature-format', 'openssl'] : []), '--input-file', input, '--output-file', out,
        ]); // prettier-ignore
        const sig = new Uint8Array(await readFile(out));
        await rm(out, { force: true });
        return sig;
      },
      async cleanup() {
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (e) {
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
}

/**
 * The EC public key from what `pkcs11-tool --keypairgen` prints: CKA_EC_POINT (a DER OCTET STRING
 * around the uncompressed point) and CKA_EC_PARAMS (the named curve's OID, DER), put together as a
 * SubjectPublicKeyInfo (RFC 5480). `--read-object --type pubkey` would do it, but OpenSC 0.23 fails
 * there for P-384 keys ("cannot create EVP_PKEY").
 */
function ecSpkiFromListing(listing: string): Uint8Array {
  const pub = listing.slice(listing.indexOf('Public Key Object'));
  const point = pub.match(/EC_POINT:\s*([0-9a-f]+)/)?.[1];
  const params = pub.match(/EC_PARAMS:\s*([0-9a-f]+)/)?.[1];
  if (point === undefined || params === undefined) throw new Error(`pkcs11-tool printed no EC public key:\n${listing}`);
  const octets = parseDer(Buffer.from(point, 'hex'));
  if (octets.tag !== TAG.OCTET_STRING) throw new Error('CKA_EC_POINT is not a DER OCTET STRING');
  return der.seq(der.seq(der.oid('1.2.840.10045.2.1'), Buffer.from(params, 'hex')), der.bits(octets.value));
}

/**
 * Builds test/rig/pin-lock-module.c: SoftHSM behind a user-PIN retry counter that locks the PIN
 * (CKR_PIN_LOCKED) after `lockAfter` wrong PINs in a row, which SoftHSM itself never does;
 * `startFailures` wrong PINs are counted before the first call (typed on another host).
 * @returns the module's path, inside `dir`
 * @throws Error when gcc fails
 */
export async function buildPinLockModule(dir: string, lockAfter = 2, startFailures = 0): Promise<string> {
  const out = join(dir, `pin-lock-${lockAfter}-${startFailures}.so`);
  const source = fileURLToPath(new URL('./pin-lock-module.c', import.meta.url));
  const headers = fileURLToPath(new URL('../../node_modules/pkcs11js/includes/pkcs11', import.meta.url));
  await runOk('/usr/bin/gcc', [
    '-shared', '-fPIC', '-O2', '-Wall', '-Werror', `-I${headers}`,
    `-DTARGET="${SOFTHSM_MODULE}"`, `-DLOCK_AFTER=${lockAfter}`, `-DSTART_FAILURES=${startFailures}`,
    '-o', out, source, '-ldl',
  ]); // prettier-ignore
  return out;
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
