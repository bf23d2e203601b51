/**
 * `cosign-web verify-bundle`: a Sigstore bundle for a file (or only its `sha256:` digest), checked
 * by shared/sigstore/ exactly as the page's "Verify file" checks it. Flags use cosign's names.
 */
import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { parseArgs } from 'node:util';
import { fromHex } from '../shared/encoding/base64.ts';
import { verifyFileBundle, type FileVerifyRequest } from '../shared/sigstore/verify-file.ts';
import { TLOG_RULES, type TlogRule } from '../shared/sigstore/verify-bundle.ts';

export const VERIFY_BUNDLE_USAGE =
  'cosign-web verify-bundle --bundle F (--certificate-identity[-regexp] I --certificate-oidc-issuer[-regexp] U | --key PEM) [--trusted-root F | --staging] [--ca-roots PEM [--ca-intermediates PEM]] [--tlog require|check|ignore] [--json] FILE_OR_SHA256_DIGEST';

/** A command line that cannot be understood (exit 2). */
export class UsageError extends Error {}

/** Files read whole: the file to verify is hashed as a stream and read whole only when this small. */
const READ_WHOLE_MAX = 64 * 1024 * 1024;

const OPTIONS = {
  bundle: { type: 'string' },
  key: { type: 'string' },
  'certificate-identity': { type: 'string' },
  'certificate-identity-regexp': { type: 'string' },
  'certificate-oidc-issuer': { type: 'string' },
  'certificate-oidc-issuer-regexp': { type: 'string' },
  'github-workflow-trigger': { type: 'string' },
  'github-workflow-sha': { type: 'string' },
  'github-workflow-name': { type: 'string' },
  'github-workflow-repository': { type: 'string' },
  'github-workflow-ref': { type: 'string' },
  'trusted-root': { type: 'string' },
  staging: { type: 'boolean' },
  'ca-roots': { type: 'string' },
  'ca-intermediates': { type: 'string' },
  tlog: { type: 'string' },
  json: { type: 'boolean' },
} as const;

async function sha256File(path: string): Promise<Uint8Array> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return new Uint8Array(h.digest());
}

async function artifact(arg: string): Promise<FileVerifyRequest['artifact']> {
  const digest = /^sha256:([0-9a-f]{64})$/.exec(arg);
  if (digest) return { sha256: fromHex(digest[1]!)! };
  const size = (await stat(arg)).size;
  const sha256 = await sha256File(arg);
  return size <= READ_WHOLE_MAX ? { sha256, bytes: new Uint8Array(await readFile(arg)) } : { sha256 };
}

const text = (path: string | undefined) => (path === undefined ? undefined : readFile(path, 'utf8'));

function tlogRule(v: string | undefined): TlogRule | undefined {
  if (v === undefined) return undefined;
  if (!(TLOG_RULES as readonly string[]).includes(v)) throw new UsageError(`--tlog takes ${TLOG_RULES.join(', ')}.`);
  return v as TlogRule;
}

async function request(argv: string[]): Promise<{ req: FileVerifyRequest; json: boolean }> {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const { values: v, positionals } = parsed;
  if (positionals.length !== 1) throw new UsageError('give one file, or its sha256:<hex> digest.');
  if (!v.bundle) throw new UsageError('--bundle is required.');
  const req: FileVerifyRequest = {
    bundleJson: new Uint8Array(await readFile(v.bundle)),
    artifact: await artifact(positionals[0]!),
    policy: {
      certificateIdentity: v['certificate-identity'],
      certificateIdentityRegexp: v['certificate-identity-regexp'],
      certificateOidcIssuer: v['certificate-oidc-issuer'],
      certificateOidcIssuerRegexp: v['certificate-oidc-issuer-regexp'],
      githubWorkflowTrigger: v['github-workflow-trigger'],
      githubWorkflowSha: v['github-workflow-sha'],
      githubWorkflowName: v['github-workflow-name'],
      githubWorkflowRepository: v['github-workflow-repository'],
      githubWorkflowRef: v['github-workflow-ref'],
    },
    keyPem: await text(v.key),
    trustedRootJson: v['trusted-root'] ? new Uint8Array(await readFile(v['trusted-root'])) : undefined,
    shippedRoot: v.staging ? 'staging' : 'public-good',
    caRootsPem: await text(v['ca-roots']),
    caIntermediatesPem: await text(v['ca-intermediates']),
    tlog: tlogRule(v.tlog),
  };
  return { req, json: v.json === true };
}

/** Runs the command; returns what to print on success. @throws UsageError, or why it did not verify. */
export async function verifyBundleCommand(argv: string[]): Promise<string> {
  const { req, json } = await request(argv);
  const result = await verifyFileBundle(req);
  if (json) return JSON.stringify(result, null, 2) + '\n';
  const s = result.signer;
  const who =
    s.kind === 'key' ? `key ${s.fingerprint}` : `${s.identity} (issuer ${s.issuer ?? 'none'}, CA ${s.authority})`;
  const logs = result.tlog.map((l) => `\n  log ${l.log} #${l.logIndex} (${l.proof})`).join('');
  const times = result.timestamps.map((t) => `\n  timestamp ${t.time} by ${t.authority}`).join('');
  const warnings = result.warnings.map((w) => `\n  warning: ${w}`).join('');
  return `Verified: sha256:${result.artifact} signed by ${who}${logs}${times}${warnings}\n`;
}
