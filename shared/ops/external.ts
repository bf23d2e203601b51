/**
 * Signing with a key this page cannot hold (a cloud KMS, SignServer, an offline machine), as
 * `cosign generate` + `cosign attach signature` do it: list the exact bytes every signature will
 * cover (the simple-signing payload of each `.sig`, the DSSE pre-authentication encoding of each
 * bundle), let someone sign them elsewhere, check each signature that comes back against the
 * chosen public key, and only then push, through {@link signImage} with a signer that hands out
 * the prepared signatures by exact bytes.
 *
 * The list is built from the same functions {@link signImage} uses (targetsToSign, legacyPayload,
 * bundleStatement, pae), so it is byte for byte what signImage asks its signer for.
 * DSSE PAE: https://github.com/secure-systems-lab/dsse/blob/master/protocol.md
 */
import { SignatureError } from '../errors.ts';
import { bytesEqual, fromBase64, toBase64, toHex } from '../encoding/base64.ts';
import { sha256Bytes } from '../crypto/digest.ts';
import type { KeyAlgorithm } from '../crypto/pkcs.ts';
import { isIndexMediaType, platformName, type Platform } from '../registry/mediatypes.ts';
import { IN_TOTO_PAYLOAD_TYPE, pae } from '../cosign/dsse.ts';
import { bundleStatement, legacyPayload, targetsToSign, type Signer, type SigningInput } from './sign.ts';
import { judgeSignature, type PreparedKey } from '../cosign/verify-signature.ts';

/** One byte string to be signed outside the page. */
export interface BytesToSign {
  /** 1-based position in the list; also the prefix of the file names. */
  n: number;
  format: 'legacy' | 'bundle';
  /** The manifest the signature is for. */
  digest: string;
  role: 'image' | 'index' | 'platform';
  platform?: Platform;
  /** "legacy signature payload for sha256:… (linux/amd64)", "DSSE PAE for the bundle of sha256:…". */
  description: string;
  bytes: Uint8Array;
  /** SHA-256 of `bytes`: what a signer that signs digests (a KMS) is given. */
  sha256: Uint8Array;
  sha256Hex: string;
  /** File names used in the downloads and in the commands shown with them. */
  files: { bytes: string; sha256: string; signature: string };
}

/** The largest signature file read: an RSA-16384 signature in base64 is under 3 KiB. */
export const MAX_SIGNATURE_FILE_BYTES = 64 * 1024;

/**
 * Every distinct byte string {@link signImage} will pass to its signer for these options, in the
 * order it asks for them (per target: legacy payload, then bundle PAE). An index that names the
 * same manifest twice yields its bytes once.
 * @throws SignatureError SIGNATURE_NOTHING_TO_WRITE, SIGNATURE_ANNOTATION_INVALID
 */
export function listBytesToSign(o: SigningInput): BytesToSign[] {
  const out: BytesToSign[] = [];
  const rootIsIndex = isIndexMediaType(o.plan.root.mediaType);
  for (const [i, target] of targetsToSign(o).entries()) {
    const digest = target.descriptor.digest;
    const role = i > 0 ? 'platform' : rootIsIndex ? 'index' : 'image';
    const where = target.platform ? ` (${platformName(target.platform)})` : role === 'index' ? ' (the index)' : '';
    const candidates: [BytesToSign['format'], Uint8Array, string][] = [];
    if (o.formats.legacy) {
      candidates.push(['legacy', legacyPayload(o, target), `legacy signature payload for ${digest}${where}`]);
    }
    if (o.formats.bundle) {
      const data = pae(IN_TOTO_PAYLOAD_TYPE, bundleStatement(o, target));
      candidates.push(['bundle', data, `DSSE PAE for the bundle of ${digest}${where}`]);
    }
    for (const [format, bytes, description] of candidates) {
      if (out.some((b) => bytesEqual(b.bytes, bytes))) continue;
      const n = out.length + 1;
      const base = `${String(n).padStart(2, '0')}-${format}-${digest.replace(/^sha256:/, '').slice(0, 12)}`;
      // File names go unquoted into the command lines and sign-all.sh: plain characters only.
      if (!/^[0-9a-z-]+$/.test(base)) {
        throw new SignatureError('SIGNATURE_IMAGE_UNSUPPORTED', `${digest} is not a sha256 digest this page can sign.`);
      }
      const sha256 = sha256Bytes(bytes);
      out.push({
        n,
        format,
        digest,
        role,
        ...(target.platform ? { platform: target.platform } : {}),
        description,
        bytes,
        sha256,
        sha256Hex: toHex(sha256),
        files: { bytes: `${base}.bin`, sha256: `${base}.sha256`, signature: `${base}.sig` },
      });
    }
  }
  return out;
}

/** Shell command lines that sign one item with a PEM private key, for the page to show. */
export interface OpensslCommands {
  /** Signs the bytes themselves; writes the DER/PKCS#1/Ed25519 signature to `files.signature`. */
  sign: string;
  /** Writes the 32-byte SHA-256 of the bytes (the same as the downloadable `.sha256` file). */
  digest: string | null;
  /** Signs the SHA-256 digest, as a KMS or HSM that is given digests does. null for Ed25519. */
  signDigest: string | null;
  /** Prints the signature as one line of base64, to paste into the page. */
  base64: string;
}

/**
 * The openssl command lines that make a signature this page (and cosign, and skopeo) accepts:
 * ECDSA over SHA-256 on every curve with a DER signature, RSA PKCS#1 v1.5 over SHA-256, pure
 * Ed25519. File names are plain (`[0-9a-z.-]`), so the lines need no quoting.
 */
export function opensslCommands(
  algorithm: KeyAlgorithm,
  files: BytesToSign['files'],
  keyFile = 'key.pem',
): OpensslCommands {
  const base64 = `base64 -w0 ${files.signature}`;
  if (algorithm.kind === 'ed25519') {
    return {
      sign: `openssl pkeyutl -sign -inkey ${keyFile} -rawin -in ${files.bytes} -out ${files.signature}`,
      digest: null,
      signDigest: null,
      base64,
    };
  }
  return {
    sign: `openssl dgst -sha256 -sign ${keyFile} -out ${files.signature} ${files.bytes}`,
    digest: `openssl dgst -sha256 -binary -out ${files.sha256} ${files.bytes}`,
    signDigest: `openssl pkeyutl -sign -inkey ${keyFile} -pkeyopt digest:sha256 -in ${files.sha256} -out ${files.signature}`,
    base64,
  };
}

/** Standard base64 wrapped at 76 columns, as `base64` writes it and `base64 -d` reads it. */
function wrapped(bytes: Uint8Array): string {
  return (toBase64(bytes).match(/.{1,76}/g) ?? []).join('\n');
}

/**
 * A POSIX shell script that signs every item with a PEM private key on the machine that holds it:
 * it writes each item's bytes (checking their SHA-256), runs the same openssl line the page shows
 * for that item (with the key file given as its first argument, default key.pem), and prints one
 * line per signature, `<n> <base64>`, for the page's "All signatures" field
 * ({@link parseSignatureLines}). Needs openssl, base64 and mktemp.
 */
export function signingScript(items: readonly BytesToSign[], algorithm: KeyAlgorithm, title: string): string {
  const lines = [
    '#!/bin/sh',
    `# cosign-web: sign the ${items.length} byte strings prepared for ${title.replace(/[^\x20-\x7e]/g, '?')}`,
    '# Usage: sh sign-all.sh [key.pem]',
    '# Prints one line per signature, "<n> <base64>": paste them all into "All signatures" on the page.',
    'set -eu',
    'key=${1:-key.pem}',
    'case $key in /*) ;; *) key="$PWD/$key" ;; esac',
    'test -r "$key" || { echo "cannot read the private key $key" >&2; exit 1; }',
    'work=$(mktemp -d)',
    'trap \'rm -rf "$work"\' EXIT',
    'cd "$work"',
  ];
  for (const item of items) {
    const cmd = opensslCommands(algorithm, item.files, '"$key"');
    lines.push(
      '',
      // Descriptions hold registry data (platform names): one printable line, never a way out of the comment.
      `# ${item.n}. ${item.description.replace(/[^\x20-\x7e]/g, '?')}`,
      `base64 -d > ${item.files.bytes} <<'EOF'`,
      wrapped(item.bytes),
      'EOF',
      `test "$(openssl dgst -sha256 -r ${item.files.bytes} | cut -d' ' -f1)" = ${item.sha256Hex} || { echo "${item.files.bytes} is damaged" >&2; exit 1; }`,
      `${cmd.sign} >&2`,
      `printf '%s %s\\n' ${item.n} "$(${cmd.base64})"`,
    );
  }
  return lines.join('\n') + '\n';
}

/**
 * Reads `<n> <base64>` lines, as {@link signingScript} prints them (blank lines and `#` comments
 * skipped); each number at most once.
 * @throws SignatureError PKCS11_EXTERNAL_SIGNATURE_INVALID naming the first line that is not of that form.
 */
export function parseSignatureLines(text: string): { n: number; base64: string }[] {
  const out: { n: number; base64: string }[] = [];
  for (const [i, raw] of text.split(/\r?\n/).entries()) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const m = /^(\d{1,4})\s+([A-Za-z0-9+/]+={0,2})$/.exec(line);
    if (!m) {
      throw invalid(`Line ${i + 1} is not "<number> <base64 signature>" as the signing script prints it.`);
    }
    const n = Number(m[1]);
    if (out.some((o) => o.n === n)) throw invalid(`Line ${i + 1} gives signature ${n} a second time.`);
    out.push({ n, base64: m[2]! });
  }
  if (out.length === 0)
    throw invalid('Paste the lines the signing script printed, one "<number> <base64>" per signature.');
  return out;
}

/** A signature handed back: pasted text, or the bytes of a chosen file. */
export type SignatureInput = { kind: 'text'; text: string } | { kind: 'file'; name: string; bytes: Uint8Array };

function invalid(message: string): SignatureError {
  return new SignatureError('PKCS11_EXTERNAL_SIGNATURE_INVALID', message);
}

const BASE64_TEXT = /^[A-Za-z0-9+/=\s]+$/;

/** Base64 text with any whitespace (line breaks of `openssl base64`) removed, or null when it is not base64. */
function base64Text(text: string): Uint8Array | null {
  if (!BASE64_TEXT.test(text)) return null;
  const bytes = fromBase64(text.replace(/\s+/g, ''));
  return bytes && bytes.length > 0 ? bytes : null;
}

/**
 * The signature bytes an input may stand for, the likeliest first: pasted text must be standard
 * base64 (line breaks allowed); a file holds either the raw signature (`openssl … -out x.sig`) or
 * its base64 (`base64 -w0 x.sig > x.b64`). Which one it is, the public key decides.
 * @throws SignatureError PKCS11_EXTERNAL_SIGNATURE_INVALID when the input is empty, too large or not base64 text.
 */
export function signatureCandidates(input: SignatureInput): Uint8Array[] {
  if (input.kind === 'text') {
    const text = input.text.trim();
    if (!text) throw invalid('Paste the signature (base64) or choose its file.');
    if (text.length > MAX_SIGNATURE_FILE_BYTES) throw invalid('This text is far too long to be a signature.');
    const bytes = base64Text(text);
    if (!bytes) {
      throw invalid(
        'This is not base64: paste the output of "base64 -w0" of the signature file, or choose the signature file itself.',
      );
    }
    return [bytes];
  }
  if (input.bytes.length === 0) throw invalid(`"${input.name}" is empty.`);
  if (input.bytes.length > MAX_SIGNATURE_FILE_BYTES) {
    throw invalid(`"${input.name}" is ${input.bytes.length} bytes: far too large to be a signature.`);
  }
  let asText: Uint8Array | null = null;
  try {
    asText = base64Text(new TextDecoder('utf-8', { fatal: true }).decode(input.bytes));
  } catch {
    // not text: a raw signature
  }
  return asText ? [asText, input.bytes] : [input.bytes];
}

/**
 * Checks a signature handed back for one item against the public key, as cosign and skopeo will
 * (the shared verifier: DER ECDSA over SHA-256, RSA PKCS#1 v1.5 over SHA-256, pure Ed25519).
 * @returns the signature bytes that verify.
 * @throws SignatureError PKCS11_EXTERNAL_SIGNATURE_INVALID with the reason: not base64, malformed
 *   or of the wrong length for the key, made by another key or over other bytes, or a variant the
 *   verifiers refuse (e.g. P-384 over SHA-384).
 */
export async function checkExternalSignature(
  key: PreparedKey,
  item: BytesToSign,
  input: SignatureInput,
): Promise<Uint8Array> {
  const candidates = signatureCandidates(input);
  let first: string | null = null;
  for (const signature of candidates) {
    const j = await judgeSignature(key, item.bytes, signature, { what: `signature for item ${item.n}` });
    if (j.ok) return signature;
    first ??= j.reason.message;
  }
  throw invalid(first!);
}

/** A signature that was checked, for the bytes it covers. */
export interface PreparedSignature {
  bytes: Uint8Array;
  signature: Uint8Array;
}

/**
 * The items of `o` that have no prepared signature: empty when everything {@link signImage} will
 * ask for is ready. Checked before pushing, so a change of image, identity, annotations or formats
 * since the bytes were prepared pushes nothing.
 * @throws SignatureError as {@link listBytesToSign}.
 */
export function missingSignatures(o: SigningInput, prepared: readonly PreparedSignature[]): BytesToSign[] {
  return listBytesToSign(o).filter((item) => !prepared.some((p) => bytesEqual(p.bytes, item.bytes)));
}

/**
 * A Signer that signs nothing itself: it returns the prepared signature of exactly the bytes it
 * is asked about, and refuses anything else.
 * @throws SignatureError PKCS11_EXTERNAL_SIGNATURE_INVALID (from sign) for bytes that were not prepared.
 */
export function preparedSigner(
  algorithm: KeyAlgorithm,
  spki: Uint8Array,
  prepared: readonly PreparedSignature[],
): Signer {
  const own = prepared.map((p) => ({ bytes: p.bytes.slice(), signature: p.signature.slice() }));
  return {
    algorithm,
    spki,
    sign: async (data) => {
      const found = own.find((p) => bytesEqual(p.bytes, data));
      if (!found) {
        throw invalid(
          `No signature was prepared for these ${data.length} bytes (SHA-256 ${toHex(sha256Bytes(data))}): prepare the bytes again and sign them.`,
        );
      }
      return found.signature.slice();
    },
  };
}
