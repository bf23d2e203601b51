// Regenerates the checked-in test vectors in test/vectors/ with the REAL tools only (cosign 2.5,
// cosign 3.1, skopeo 1.18, openssl, python3-nacl via make-legacy-key.py, a distribution 2.8
// registry). No project code makes or transforms key or signature material: this script only runs
// the tools, copies the bytes they wrote (or that the registry serves) and writes index.json and
// README.md describing them, with the exact command and password of each file.
//
//   bash test/rig/install.sh && npx tsx test/vectors/make-vectors.ts [OUT_DIR]
//
// OUT_DIR defaults to test/vectors. Keys are random: every run makes different vectors.
import { createHash } from 'node:crypto';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pushSampleImage } from '../rig/images.ts';
import { loopbackGet, startRegistries } from '../rig/registries.ts';
import {
  cosign2SignArgs,
  cosign3SignArgs,
  cosignEnv,
  makeCosign3Offline,
  makeToolHome,
  run,
  runOk,
  toolVersions,
  type RunResult,
  type ToolHome,
  type ToolName,
} from '../rig/tools.ts';

const HERE = dirname(fileURLToPath(import.meta.url));
const OUT = process.argv[2] ?? HERE;
const KEYS = join(OUT, 'keys');
const SIGS = join(OUT, 'signatures');
const REG = join(OUT, 'registry');
const PASSWORD = 'correct horse';
const LEGACY_SCRIPT = join(HERE, 'make-legacy-key.py');

type Algorithm = 'ecdsa' | 'rsa' | 'ed25519';

export interface Outcome {
  accepted: boolean;
  command: string;
  /** The tool's error line when it refused. */
  error?: string;
}

export interface KeyFacts {
  algorithm: Algorithm;
  curve?: 'P-256' | 'P-384' | 'P-521';
  rsaBits?: number;
  /** sha256 of the SubjectPublicKeyInfo DER: `openssl pkey [-pubin] -pubout -outform DER | sha256sum`. */
  spkiSha256: string;
}

export interface VectorEntry extends Partial<KeyFacts> {
  file: string;
  kind:
    | 'cosign-private-key'
    | 'public-key'
    | 'openssl-private-key'
    | 'blob'
    | 'blob-signature'
    | 'signing-config'
    | 'trusted-root'
    | 'oci-manifest'
    | 'oci-index'
    | 'oci-config'
    | 'simple-signing-payload'
    | 'sigstore-bundle';
  tool: string;
  toolVersion: string;
  command: string;
  description: string;
  /** Password of an encrypted private key ("" is a real, empty password). */
  password?: string;
  pemLabel?: string;
  /** openssl input encoding, or the envelope's scrypt parameters for cosign keys. */
  encoding?: 'sec1' | 'pkcs8' | 'pkcs1' | 'pkcs8-der' | 'spki';
  scrypt?: { N: number; r: number; p: number };
  /** The matching public key file (for private keys and signatures). */
  publicKey?: string;
  /** For private keys: does `cosignN public-key --key F` (with the password) accept it?
   *  For openssl inputs: does `cosignN import-key-pair --key F` accept it?
   *  For signatures: does `cosignN verify-blob` / openssl accept it? */
  accepts?: Partial<Record<'cosign2' | 'cosign3' | 'openssl-sha256' | 'openssl-sha384' | 'openssl-ed25519', Outcome>>;
  /** For imports: the files cosign 3.1 wrote. */
  importedAs?: { cosign2?: string; cosign3?: string };
  /** For registry objects: the media type / digest the registry served. */
  mediaType?: string;
  digest?: string;
  signs?: string;
  note?: string;
}

const entries: VectorEntry[] = [];
let versions: Awaited<ReturnType<typeof toolVersions>>;

function shq(s: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

function commandLine(tool: string, args: readonly string[], password?: string): string {
  const pw = password === undefined ? '' : `COSIGN_PASSWORD=${password === '' ? "''" : shq(password)} `;
  return `${pw}${[tool, ...args].map(shq).join(' ')}`;
}

function toolVersion(tool: string): string {
  switch (tool) {
    case 'cosign2':
      return `cosign ${versions.cosign2} (Debian trixie)`;
    case 'cosign3':
      return `cosign ${versions.cosign3} (Debian sid)`;
    case 'skopeo':
      return `skopeo ${versions.skopeo} (Debian trixie)`;
    case 'openssl':
      return `OpenSSL ${versions.openssl} (Debian bookworm)`;
    case 'python3':
      return 'Python 3 hashlib.scrypt + PyNaCl (Debian bookworm python3-nacl)';
    case 'registry':
      return `distribution ${versions.registry} (Debian bookworm docker-registry)`;
    default:
      return tool;
  }
}

interface Ran extends RunResult {
  command: string;
}

async function tool(
  home: ToolHome,
  name: ToolName,
  args: readonly string[],
  o: { password?: string; cwd?: string; caFile?: string } = {},
): Promise<Ran> {
  const env = name === 'cosign2' || name === 'cosign3' ? cosignEnv(home, o) : {};
  const r = await run(name, args, { env, cwd: o.cwd ?? KEYS });
  return { ...r, command: commandLine(name, args, o.password) };
}

async function toolOk(
  home: ToolHome,
  name: ToolName,
  args: readonly string[],
  o: { password?: string; cwd?: string; caFile?: string } = {},
): Promise<Ran> {
  const r = await tool(home, name, args, o);
  if (r.code !== 0) throw new Error(`${r.command} failed (${r.code}): ${r.stderr}`);
  return r;
}

function errorLine(stderr: string): string {
  const lines = stderr.split('\n').map((l) => l.trim()).filter((l) => l.startsWith('Error:'));
  return lines[0]?.replace(/^Error:\s*/, '') ?? stderr.trim().split('\n').pop() ?? '';
}

function rel(file: string): string {
  return relative(OUT, file);
}

/** Public-key facts computed by openssl from a key file (private or public, PEM or DER). */
async function keyFacts(home: ToolHome, file: string, form: 'private' | 'public' | 'private-der'): Promise<KeyFacts> {
  const der = join(home.dir, 'spki.der');
  const inArgs = form === 'public' ? ['-pubin', '-in', file] : form === 'private-der' ? ['-inform', 'DER', '-in', file] : ['-in', file];
  await runOk('openssl', ['pkey', ...inArgs, '-pubout', '-outform', 'DER', '-out', der]);
  const sum = (await runOk('sha256sum', [der])).stdout.split(' ')[0] ?? '';
  const text = (await runOk('openssl', ['pkey', '-pubin', '-inform', 'DER', '-in', der, '-noout', '-text'])).stdout;
  // Cross-check the openssl | sha256sum pipeline with an independent hash of the same DER.
  const check = createHash('sha256').update(await readFile(der)).digest('hex');
  if (check !== sum) throw new Error(`sha256sum disagrees for ${file}`);
  if (/^ED25519 Public-Key/m.test(text)) return { algorithm: 'ed25519', spkiSha256: sum };
  const curve = /NIST CURVE: (P-256|P-384|P-521)/.exec(text)?.[1];
  if (curve === 'P-256' || curve === 'P-384' || curve === 'P-521') return { algorithm: 'ecdsa', curve, spkiSha256: sum };
  const bits = /Public-Key: \((\d+) bit\)/.exec(text)?.[1];
  if (/Modulus:/.test(text) && bits !== undefined) return { algorithm: 'rsa', rsaBits: Number(bits), spkiSha256: sum };
  throw new Error(`cannot tell the algorithm of ${file}:\n${text}`);
}

async function envelopeFacts(file: string): Promise<{ pemLabel: string; scrypt: { N: number; r: number; p: number } }> {
  const pem = await readFile(file, 'utf8');
  const label = /-----BEGIN ([A-Z ]+)-----/.exec(pem)?.[1] ?? '';
  const body = pem.replace(/-----[A-Z ]+-----/g, '').replace(/\s+/g, '');
  const env = JSON.parse(Buffer.from(body, 'base64').toString('utf8')) as { kdf: { params: { N: number; r: number; p: number } } };
  return { pemLabel: label, scrypt: env.kdf.params };
}

async function publicKeyAccepts(home: ToolHome, keyFile: string, password: string): Promise<{ cosign2: Outcome; cosign3: Outcome }> {
  const out: Record<'cosign2' | 'cosign3', Outcome> = {
    cosign2: { accepted: false, command: '' },
    cosign3: { accepted: false, command: '' },
  };
  for (const t of ['cosign2', 'cosign3'] as const) {
    const r = await tool(home, t, ['public-key', '--key', rel2(keyFile)], { password });
    out[t] = r.code === 0 ? { accepted: true, command: r.command } : { accepted: false, command: r.command, error: errorLine(r.stderr) };
  }
  return out;
}

/** Paths in commands are relative to keys/ (the commands run there). */
function rel2(file: string): string {
  return relative(KEYS, file);
}

async function addPrivate(
  home: ToolHome,
  keyFile: string,
  pubFile: string,
  made: Ran,
  madeBy: 'cosign2' | 'cosign3' | 'python3',
  password: string,
  description: string,
  note?: string,
): Promise<void> {
  const facts = await keyFacts(home, pubFile, 'public');
  const env = await envelopeFacts(keyFile);
  const e: VectorEntry = {
    file: rel(keyFile),
    kind: 'cosign-private-key',
    tool: madeBy,
    toolVersion: toolVersion(madeBy),
    command: made.command,
    description,
    password,
    pemLabel: env.pemLabel,
    scrypt: env.scrypt,
    ...facts,
    publicKey: rel(pubFile),
    accepts: await publicKeyAccepts(home, keyFile, password),
  };
  if (note !== undefined) e.note = note;
  entries.push(e);
}

async function addPublic(home: ToolHome, pubFile: string, made: Ran, madeBy: 'cosign2' | 'cosign3', description: string): Promise<void> {
  entries.push({
    file: rel(pubFile),
    kind: 'public-key',
    tool: madeBy,
    toolVersion: toolVersion(madeBy),
    command: made.command,
    description,
    pemLabel: 'PUBLIC KEY',
    encoding: 'spki',
    ...(await keyFacts(home, pubFile, 'public')),
  });
}

// ---------------------------------------------------------------------------------------------
async function generated(home: ToolHome, t: 'cosign2' | 'cosign3', name: string, password: string): Promise<void> {
  const made = await toolOk(home, t, ['generate-key-pair', '--output-key-prefix', name], { password });
  const key = join(KEYS, `${name}.key`);
  const pub = join(KEYS, `${name}.pub`);
  const pwText = password === '' ? 'an empty password' : `password "${password}"`;
  await addPrivate(home, key, pub, made, t, password, `${t} generate-key-pair, ${pwText}`);
  await addPublic(home, pub, made, t, `public key written by ${t} generate-key-pair next to ${name}.key`);
  const pkFile = join(KEYS, `${name}.public-key.pub`);
  const pk = await toolOk(home, t, ['public-key', '--key', `${name}.key`, '--outfile', rel2(pkFile)], { password });
  await addPublic(home, pkFile, pk, t, `${t} public-key --key ${name}.key (must equal ${name}.pub)`);
  if ((await readFile(pkFile, 'utf8')) !== (await readFile(pub, 'utf8'))) {
    const last = entries[entries.length - 1];
    if (last !== undefined) last.note = `differs byte-wise from ${name}.pub (same key)`;
  }
}

interface OpensslInput {
  name: string;
  args: string[];
  encoding: 'sec1' | 'pkcs8' | 'pkcs1';
}

const OPENSSL_INPUTS: OpensslInput[] = [
  { name: 'ec-p256-sec1', encoding: 'sec1', args: ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'ec-p256-sec1.pem'] },
  { name: 'ec-p256-pkcs8', encoding: 'pkcs8', args: ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', 'ec-p256-pkcs8.pem'] },
  { name: 'ec-p384-sec1', encoding: 'sec1', args: ['ecparam', '-name', 'secp384r1', '-genkey', '-noout', '-out', 'ec-p384-sec1.pem'] },
  { name: 'ec-p384-pkcs8', encoding: 'pkcs8', args: ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-384', '-out', 'ec-p384-pkcs8.pem'] },
  { name: 'ec-p521-sec1', encoding: 'sec1', args: ['ecparam', '-name', 'secp521r1', '-genkey', '-noout', '-out', 'ec-p521-sec1.pem'] },
  { name: 'ec-p521-pkcs8', encoding: 'pkcs8', args: ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-521', '-out', 'ec-p521-pkcs8.pem'] },
  { name: 'rsa-2048-pkcs1', encoding: 'pkcs1', args: ['genrsa', '-traditional', '-out', 'rsa-2048-pkcs1.pem', '2048'] },
  { name: 'rsa-2048-pkcs8', encoding: 'pkcs8', args: ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', 'rsa-2048-pkcs8.pem'] },
  { name: 'rsa-3072-pkcs8', encoding: 'pkcs8', args: ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:3072', '-out', 'rsa-3072-pkcs8.pem'] },
  { name: 'ed25519-pkcs8', encoding: 'pkcs8', args: ['genpkey', '-algorithm', 'ed25519', '-out', 'ed25519-pkcs8.pem'] },
  { name: 'rsa-1024-pkcs8', encoding: 'pkcs8', args: ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:1024', '-out', 'rsa-1024-pkcs8.pem'] },
];

async function imported(home: ToolHome, input: OpensslInput): Promise<void> {
  const made = await toolOk(home, 'openssl', input.args);
  const pem = join(KEYS, `${input.name}.pem`);
  const facts = await keyFacts(home, pem, 'private');
  const label = /-----BEGIN ([A-Z ]+)-----/.exec(await readFile(pem, 'utf8'))?.[1] ?? '';
  const entry: VectorEntry = {
    file: rel(pem),
    kind: 'openssl-private-key',
    tool: 'openssl',
    toolVersion: toolVersion('openssl'),
    command: made.command,
    description: `unencrypted ${input.encoding.toUpperCase()} input for import-key-pair`,
    pemLabel: label,
    encoding: input.encoding,
    ...facts,
    accepts: {},
    importedAs: {},
  };
  entries.push(entry);
  for (const t of ['cosign3', 'cosign2'] as const) {
    const prefix = `${t}-import-${input.name}`;
    const r = await tool(home, t, ['import-key-pair', '--key', `${input.name}.pem`, '--output-key-prefix', prefix], { password: PASSWORD });
    const accepts = entry.accepts ?? {};
    accepts[t] = r.code === 0 ? { accepted: true, command: r.command } : { accepted: false, command: r.command, error: errorLine(r.stderr) };
    entry.accepts = accepts;
    if (r.code !== 0) continue;
    const key = join(KEYS, `${prefix}.key`);
    const pub = join(KEYS, `${prefix}.pub`);
    (entry.importedAs ?? (entry.importedAs = {}))[t] = rel(key);
    await addPrivate(home, key, pub, r, t, PASSWORD, `${t} import-key-pair of ${input.name}.pem, password "${PASSWORD}"`);
    await addPublic(home, pub, r, t, `public key written by ${t} import-key-pair of ${input.name}.pem`);
    const imp = entries[entries.length - 1];
    if (imp !== undefined && imp.spkiSha256 !== facts.spkiSha256) throw new Error(`${prefix}.pub is not the key of ${input.name}.pem`);
  }
}

async function legacy(home: ToolHome): Promise<void> {
  // The plaintext must be PKCS#8 DER. (`openssl genpkey -outform DER` writes SEC1 for EC keys in
  // OpenSSL 3.0, so the PEM is converted with `openssl pkcs8 -topk8`.)
  const pemIn = join(KEYS, 'legacy-p256.pem');
  const der = join(KEYS, 'legacy-p256.pkcs8.der');
  const madePem = await toolOk(home, 'openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', rel2(pemIn)]);
  const madeDer = await toolOk(home, 'openssl', ['pkcs8', '-topk8', '-nocrypt', '-in', rel2(pemIn), '-outform', 'DER', '-out', rel2(der)]);
  const facts = await keyFacts(home, der, 'private-der');
  entries.push(
    {
      file: rel(pemIn),
      kind: 'openssl-private-key',
      tool: 'openssl',
      toolVersion: toolVersion('openssl'),
      command: madePem.command,
      description: 'the key sealed into legacy-cosign-p256.key (PEM form)',
      pemLabel: 'PRIVATE KEY',
      encoding: 'pkcs8',
      ...facts,
    },
    {
      file: rel(der),
      kind: 'openssl-private-key',
      tool: 'openssl',
      toolVersion: toolVersion('openssl'),
      command: `${madePem.command} && ${madeDer.command}`,
      description: 'PKCS#8 DER plaintext sealed into legacy-cosign-p256.key by make-legacy-key.py',
      encoding: 'pkcs8-der',
      ...facts,
    },
  );
  const key = join(KEYS, 'legacy-cosign-p256.key');
  const args = ['--in', rel2(der), '--password', PASSWORD, '--n', '32768', '--out', rel2(key)];
  const py = await toolOk(home, 'python3', [LEGACY_SCRIPT, ...args]);
  // Proof that the independent construction is a valid cosign key: cosign 2.5 reads it back.
  const pub = join(KEYS, 'legacy-cosign-p256.public-key.pub');
  const proof = await toolOk(home, 'cosign2', ['public-key', '--key', rel2(key), '--outfile', rel2(pub)], { password: PASSWORD });
  const pubFacts = await keyFacts(home, pub, 'public');
  if (pubFacts.spkiSha256 !== facts.spkiSha256) throw new Error('cosign2 public-key of the legacy key is not the sealed key');
  await addPrivate(
    home,
    key,
    pub,
    { ...py, command: `/usr/bin/python3 ../make-legacy-key.py ${args.map(shq).join(' ')}` },
    'python3',
    PASSWORD,
    `older-cosign key (label ENCRYPTED COSIGN PRIVATE KEY, scrypt N=32768) made independently by make-legacy-key.py from legacy-p256.pkcs8.der, password "${PASSWORD}"`,
    `proven valid: \`${proof.command}\` exits 0 and prints the public key of legacy-p256.pkcs8.der`,
  );
  await addPublic(home, pub, proof, 'cosign2', 'cosign2 public-key of legacy-cosign-p256.key (the proof)');

  // Negative vector: the same construction around SEC1 DER instead of PKCS#8: cosign refuses it.
  const sec1 = join(KEYS, 'legacy-p256.sec1.der');
  const madeSec1 = await toolOk(home, 'openssl', ['ec', '-in', rel2(pemIn), '-outform', 'DER', '-out', rel2(sec1)]);
  const bad = join(KEYS, 'legacy-cosign-p256-sec1-plaintext.key');
  const badArgs = ['--in', rel2(sec1), '--password', PASSWORD, '--n', '32768', '--out', rel2(bad)];
  await toolOk(home, 'python3', [LEGACY_SCRIPT, ...badArgs]);
  entries.push({
    file: rel(sec1),
    kind: 'openssl-private-key',
    tool: 'openssl',
    toolVersion: toolVersion('openssl'),
    command: madeSec1.command,
    description: 'SEC1 DER of legacy-p256.pem (plaintext of the negative vector)',
    encoding: 'sec1',
    ...facts,
  });
  const badEnv = await envelopeFacts(bad);
  entries.push({
    file: rel(bad),
    kind: 'cosign-private-key',
    tool: 'python3',
    toolVersion: toolVersion('python3'),
    command: `/usr/bin/python3 ../make-legacy-key.py ${badArgs.map(shq).join(' ')}`,
    description: 'NEGATIVE: a well-formed envelope whose plaintext is SEC1 DER, not PKCS#8; decrypts with the password but cosign refuses the key',
    password: PASSWORD,
    pemLabel: badEnv.pemLabel,
    scrypt: badEnv.scrypt,
    ...facts,
    publicKey: rel(pub),
    accepts: await publicKeyAccepts(home, bad, PASSWORD),
  });
}

// ---------------------------------------------------------------------------------------------
async function blobSignatures(home: ToolHome): Promise<void> {
  const blob = join(SIGS, 'blob.txt');
  // Any bytes do for a blob signature: a fixed text keeps the vector readable. (Real image payloads
  // made by cosign and skopeo are in registry/.)
  await writeFile(blob, 'cosign-web test vector: a blob signed by cosign 2.5 sign-blob\n');
  entries.push({
    file: rel(blob),
    kind: 'blob',
    tool: 'none',
    toolVersion: '',
    command: "printf 'cosign-web test vector: a blob signed by cosign 2.5 sign-blob\\n' > blob.txt",
    description: 'the bytes signed by the blob-signature vectors',
  });
  const signers: { key: string; pub: string; label: string }[] = [
    { key: 'cosign2-pw.key', pub: 'cosign2-pw.pub', label: 'cosign2-p256' },
    { key: 'cosign3-import-ec-p384-pkcs8.key', pub: 'cosign3-import-ec-p384-pkcs8.pub', label: 'p384' },
    { key: 'cosign3-import-rsa-2048-pkcs8.key', pub: 'cosign3-import-rsa-2048-pkcs8.pub', label: 'rsa2048' },
    { key: 'cosign3-import-ed25519-pkcs8.key', pub: 'cosign3-import-ed25519-pkcs8.pub', label: 'ed25519' },
  ];
  for (const s of signers) {
    const sig = join(SIGS, `blob.${s.label}.sig`);
    const keyPath = join('..', 'keys', s.key);
    const pubPath = join('..', 'keys', s.pub);
    const made = await toolOk(home, 'cosign2', ['sign-blob', '--key', keyPath, '--tlog-upload=false', '--yes', '--output-signature', `blob.${s.label}.sig`, 'blob.txt'], {
      password: PASSWORD,
      cwd: SIGS,
    });
    const accepts: VectorEntry['accepts'] = {};
    for (const t of ['cosign2', 'cosign3'] as const) {
      const r = await tool(home, t, ['verify-blob', '--key', pubPath, '--insecure-ignore-tlog=true', '--signature', `blob.${s.label}.sig`, 'blob.txt'], { cwd: SIGS });
      accepts[t] = r.code === 0 ? { accepted: true, command: r.command } : { accepted: false, command: r.command, error: errorLine(r.stderr) };
    }
    // Independent check with openssl of the raw signature (base64-decoded by openssl itself).
    const der = join(home.dir, 'sig.der');
    await runOk('openssl', ['base64', '-d', '-A', '-in', sig, '-out', der]);
    const facts = await keyFacts(home, join(KEYS, s.pub), 'public');
    if (facts.algorithm === 'ed25519') {
      const r = await run('openssl', ['pkeyutl', '-verify', '-pubin', '-inkey', join(KEYS, s.pub), '-rawin', '-in', blob, '-sigfile', der]);
      accepts['openssl-ed25519'] = { accepted: r.code === 0, command: `openssl pkeyutl -verify -pubin -inkey ${pubPath} -rawin -in blob.txt -sigfile <base64-decoded sig>` };
    } else {
      for (const h of ['sha256', 'sha384'] as const) {
        const r = await run('openssl', ['dgst', `-${h}`, '-verify', join(KEYS, s.pub), '-signature', der, blob]);
        accepts[`openssl-${h}`] = { accepted: r.code === 0, command: `openssl dgst -${h} -verify ${pubPath} -signature <base64-decoded sig> blob.txt` };
      }
    }
    entries.push({
      file: rel(sig),
      kind: 'blob-signature',
      tool: 'cosign2',
      toolVersion: toolVersion('cosign2'),
      command: `(cd signatures && ${made.command})`,
      description: `base64 signature of blob.txt by ${s.key}`,
      password: PASSWORD,
      ...facts,
      publicKey: `keys/${s.pub}`,
      signs: 'signatures/blob.txt',
      accepts,
    });
  }
}

// ---------------------------------------------------------------------------------------------
async function registryObjects(home: ToolHome): Promise<void> {
  const regs = await startRegistries({ token: false });
  try {
    const ca = await readFile(regs.tls.caFile);
    const host = regs.tls.host;
    const get = async (path: string, accept?: string): Promise<{ body: Buffer; type: string; digest: string }> => {
      const r = await loopbackGet(`https://${host}${path}`, { ca, headers: accept === undefined ? {} : { accept } });
      if (r.status !== 200) throw new Error(`GET ${path}: ${r.status} ${r.body.toString()}`);
      return { body: r.body, type: String(r.headers['content-type'] ?? ''), digest: String(r.headers['docker-content-digest'] ?? '') };
    };
    const ACCEPT = 'application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json';
    const save = async (name: string, body: Buffer): Promise<string> => {
      const f = join(REG, name);
      await writeFile(f, body);
      return f;
    };
    const regVersion = toolVersion('registry');

    // cosign 2.5: legacy .sig object.
    const img2 = await pushSampleImage(regs.tls, 'vectors/legacy', 'v1');
    const hex2 = img2.digest.slice('sha256:'.length);
    const sign2 = await toolOk(home, 'cosign2', cosign2SignArgs(join(KEYS, 'cosign2-pw.key'), img2.ref), { password: PASSWORD, caFile: regs.tls.caFile });
    const sigTag = `sha256-${hex2}.sig`;
    const m2 = await get(`/v2/vectors/legacy/manifests/${sigTag}`, ACCEPT);
    await save('cosign2-sig-manifest.json', m2.body);
    const man2 = JSON.parse(m2.body.toString()) as { config: { digest: string }; layers: { digest: string; annotations: Record<string, string> }[] };
    const cfg2 = await get(`/v2/vectors/legacy/blobs/${man2.config.digest}`);
    await save('cosign2-sig-config.json', cfg2.body);
    const layer2 = man2.layers[0];
    if (layer2 === undefined) throw new Error('cosign2 .sig has no layer');
    const pay2 = await get(`/v2/vectors/legacy/blobs/${layer2.digest}`);
    await save('cosign2-sig-payload.json', pay2.body);
    const common2 = { tool: 'cosign2', toolVersion: `${toolVersion('cosign2')}; served by ${regVersion}`, password: PASSWORD, publicKey: 'keys/cosign2-pw.pub' };
    const signCmd2 = sign2.command.replace(join(KEYS, 'cosign2-pw.key'), 'keys/cosign2-pw.key');
    entries.push(
      { file: 'registry/cosign2-sig-manifest.json', kind: 'oci-manifest', ...common2, command: `${signCmd2}; then GET /v2/vectors/legacy/manifests/${sigTag}`, description: `the .sig manifest cosign 2.5 pushed for ${img2.ref}`, mediaType: m2.type, digest: m2.digest, signs: img2.digest },
      { file: 'registry/cosign2-sig-config.json', kind: 'oci-config', ...common2, command: `GET /v2/vectors/legacy/blobs/${man2.config.digest}`, description: 'config blob of that .sig manifest', digest: man2.config.digest },
      { file: 'registry/cosign2-sig-payload.json', kind: 'simple-signing-payload', ...common2, command: `GET /v2/vectors/legacy/blobs/${layer2.digest}`, description: 'the simple-signing payload (layer 0); its signature is the dev.cosignproject.cosign/signature annotation in the manifest', digest: layer2.digest, signs: img2.digest },
    );

    // cosign 3.1: Sigstore bundle through the referrers tag fallback (distribution 2.8 has no referrers API).
    const offline = await makeCosign3Offline(home);
    const img3 = await pushSampleImage(regs.tls, 'vectors/bundle', 'v1');
    const hex3 = img3.digest.slice('sha256:'.length);
    const sign3 = await toolOk(home, 'cosign3', cosign3SignArgs(join(KEYS, 'cosign2-pw.key'), offline, img3.ref), { password: PASSWORD, caFile: regs.tls.caFile });
    const signCmd3 = sign3.command
      .replace(join(KEYS, 'cosign2-pw.key'), 'keys/cosign2-pw.key')
      .replace(offline.signingConfig, 'registry/signing-config.json')
      .replace(offline.trustedRoot, 'registry/trusted-root.json');
    await save('signing-config.json', await readFile(offline.signingConfig));
    await save('trusted-root.json', await readFile(offline.trustedRoot));
    entries.push(
      { file: 'registry/signing-config.json', kind: 'signing-config', tool: 'cosign3', toolVersion: toolVersion('cosign3'), command: 'cosign3 signing-config create --no-default-fulcio --no-default-oidc --no-default-rekor --no-default-tsa --out registry/signing-config.json', description: 'signing config with no Fulcio, OIDC, Rekor or TSA: key signing with no network' },
      { file: 'registry/trusted-root.json', kind: 'trusted-root', tool: 'cosign3', toolVersion: toolVersion('cosign3'), command: 'cosign3 trusted-root create --no-default-ctfe --no-default-fulcio --no-default-rekor --no-default-tsa --out registry/trusted-root.json', description: 'an empty trusted root: stops cosign 3.1 sign from fetching one through TUF' },
    );
    const idx = await get(`/v2/vectors/bundle/manifests/sha256-${hex3}`, ACCEPT);
    await save('cosign3-referrers-index.json', idx.body);
    const index = JSON.parse(idx.body.toString()) as { manifests: { digest: string }[] };
    const ref0 = index.manifests[0];
    if (ref0 === undefined) throw new Error('cosign3 referrers index is empty');
    const m3 = await get(`/v2/vectors/bundle/manifests/${ref0.digest}`, ACCEPT);
    await save('cosign3-bundle-manifest.json', m3.body);
    const man3 = JSON.parse(m3.body.toString()) as { layers: { digest: string }[] };
    const l3 = man3.layers[0];
    if (l3 === undefined) throw new Error('cosign3 bundle manifest has no layer');
    const b3 = await get(`/v2/vectors/bundle/blobs/${l3.digest}`);
    await save('cosign3-bundle.json', b3.body);
    const common3 = { tool: 'cosign3', toolVersion: `${toolVersion('cosign3')}; served by ${regVersion}`, password: PASSWORD, publicKey: 'keys/cosign2-pw.pub' };
    entries.push(
      { file: 'registry/cosign3-referrers-index.json', kind: 'oci-index', ...common3, command: `${signCmd3}; then GET /v2/vectors/bundle/manifests/sha256-${hex3}`, description: `referrers-tag fallback index cosign 3.1 wrote for ${img3.ref}`, mediaType: idx.type, digest: idx.digest, signs: img3.digest },
      { file: 'registry/cosign3-bundle-manifest.json', kind: 'oci-manifest', ...common3, command: `GET /v2/vectors/bundle/manifests/${ref0.digest}`, description: 'the referrer manifest (artifactType sigstore bundle, subject = the image)', mediaType: m3.type, digest: m3.digest, signs: img3.digest },
      { file: 'registry/cosign3-bundle.json', kind: 'sigstore-bundle', ...common3, command: `GET /v2/vectors/bundle/blobs/${l3.digest}`, description: 'the Sigstore bundle v0.3 (DSSE envelope, public key hint, no tlog entries)', digest: l3.digest, signs: img3.digest },
    );

    // skopeo 1.18: sigstore signature written by containers/image.
    const imgS = await pushSampleImage(regs.tls, 'vectors/skopeo', 'v1');
    const hexS = imgS.digest.slice('sha256:'.length);
    const pwFile = join(home.dir, 'passphrase');
    await writeFile(pwFile, `${PASSWORD}\n`);
    const certDir = join(home.dir, 'certs');
    await mkdir(certDir, { recursive: true });
    await writeFile(join(certDir, 'ca.crt'), ca);
    await toolOk(home, 'skopeo', [
      'copy', '--src-cert-dir', certDir, '--dest-cert-dir', certDir,
      '--sign-by-sigstore-private-key', join(KEYS, 'cosign2-pw.key'), '--sign-passphrase-file', pwFile,
      `docker://${imgS.tagRef}`, `docker://${imgS.repository}:signed`,
    ]);
    const mS = await get(`/v2/vectors/skopeo/manifests/sha256-${hexS}.sig`, ACCEPT);
    await save('skopeo-sig-manifest.json', mS.body);
    const manS = JSON.parse(mS.body.toString()) as { layers: { digest: string }[] };
    const lS = manS.layers[0];
    if (lS === undefined) throw new Error('skopeo .sig has no layer');
    const pS = await get(`/v2/vectors/skopeo/blobs/${lS.digest}`);
    await save('skopeo-sig-payload.json', pS.body);
    const signCmdS = `skopeo copy --src-cert-dir CERTS --dest-cert-dir CERTS --sign-by-sigstore-private-key keys/cosign2-pw.key --sign-passphrase-file FILE(${JSON.stringify(`${PASSWORD}\n`)}) docker://${imgS.tagRef} docker://${imgS.repository}:signed`;
    const commonS = { tool: 'skopeo', toolVersion: `${toolVersion('skopeo')}; served by ${regVersion}`, password: PASSWORD, publicKey: 'keys/cosign2-pw.pub' };
    entries.push(
      { file: 'registry/skopeo-sig-manifest.json', kind: 'oci-manifest', ...commonS, command: `${signCmdS}; then GET /v2/vectors/skopeo/manifests/sha256-${hexS}.sig`, description: `the .sig manifest skopeo pushed for ${imgS.digest}`, mediaType: mS.type, digest: mS.digest, signs: imgS.digest },
      { file: 'registry/skopeo-sig-payload.json', kind: 'simple-signing-payload', ...commonS, command: `GET /v2/vectors/skopeo/blobs/${lS.digest}`, description: 'skopeo simple-signing payload (docker-reference with tag, optional.creator/timestamp)', digest: lS.digest, signs: imgS.digest },
    );
  } finally {
    await regs.stop();
  }
}

// ---------------------------------------------------------------------------------------------
function mdEscape(s: string): string {
  return s.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

function outcomeText(e: VectorEntry): string {
  if (e.accepts === undefined) return '';
  return Object.entries(e.accepts)
    .map(([k, o]) => {
      if (o === undefined) return '';
      if (k.startsWith('openssl')) return `${k}: ${o.accepted ? 'verifies' : 'does not verify'}`;
      return `${k}: ${o.accepted ? 'yes' : `NO (${o.error ?? 'refused'})`}`;
    })
    .filter((s) => s !== '')
    .join('; ');
}

async function writeReadme(): Promise<void> {
  const lines: string[] = [
    '# Test vectors made by the real tools',
    '',
    'Every file here was written by a real tool, never by project code: cosign 2.5 (Debian trixie',
    '`cosign` package, run as `cosign2`), cosign 3.1 (Debian sid, run as `cosign3`), skopeo 1.18',
    '(Debian trixie), OpenSSL from Debian bookworm, and `make-legacy-key.py` (Python hashlib.scrypt +',
    'PyNaCl), all installed by `bash test/rig/install.sh`. `make-vectors.ts` ran the commands below',
    '(`npx tsx test/vectors/make-vectors.ts`; keys are random, so a rerun makes new vectors) and wrote',
    '`index.json`, which lists every file with its kind, password, algorithm/curve, the SHA-256 of its',
    'SubjectPublicKeyInfo DER and whether each cosign accepts it, so tests can iterate over it.',
    '',
    `Tool versions: cosign2 = cosign ${versions.cosign2}, cosign3 = cosign ${versions.cosign3}, skopeo ${versions.skopeo},`,
    `OpenSSL ${versions.openssl}, registry = distribution ${versions.registry}.`,
    '',
    '- Commands run in `keys/` unless they say otherwise; `COSIGN_PASSWORD=…` is the password given',
    '  (`\'\'` = the empty password). Every password that is not empty is `correct horse`.',
    '- `spkiSha256` = `openssl pkey [-pubin] -in FILE -pubout -outform DER | sha256sum`.',
    '- For a private key, "accepts" = `cosignN public-key --key FILE` with its password exits 0.',
    '  For an openssl input, "accepts" = `cosignN import-key-pair --key FILE` exits 0 (the refusal',
    '  message is kept). For a signature, "accepts" = `verify-blob` exits 0, and the openssl rows',
    '  say which digest openssl verifies the raw signature with.',
    '- `registry/` holds objects as a distribution 2.8 registry served them after the real tools',
    '  signed freshly pushed images (host `localhost:PORT` with a random port, so the payloads name',
    '  it); all of them are signed by `keys/cosign2-pw.key`.',
    '- `keys/legacy-cosign-p256.key` is the "older cosign" format (label `ENCRYPTED COSIGN PRIVATE',
    '  KEY`, scrypt N=32768), made independently by `make-legacy-key.py`; cosign 2.5 `public-key`',
    '  reads it back to the key sealed in it, which proves it valid.',
    '',
    '| file | kind | tool | command | password | key | spkiSha256 | accepts | notes |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- |',
  ];
  for (const e of entries) {
    const key = e.algorithm === undefined ? '' : `${e.algorithm}${e.curve !== undefined ? ` ${e.curve}` : ''}${e.rsaBits !== undefined ? ` ${e.rsaBits}` : ''}`;
    const pw = e.password === undefined ? '' : e.password === '' ? '(empty)' : `\`${e.password}\``;
    const notes = [e.description, e.note ?? '', e.scrypt !== undefined ? `label ${e.pemLabel ?? ''}, scrypt N=${e.scrypt.N}` : ''].filter((s) => s !== '').join('; ');
    lines.push(
      `| \`${e.file}\` | ${e.kind} | ${mdEscape(e.toolVersion || e.tool)} | \`${mdEscape(e.command)}\` | ${pw} | ${key} | ${e.spkiSha256 !== undefined ? `\`${e.spkiSha256.slice(0, 16)}…\`` : ''} | ${mdEscape(outcomeText(e))} | ${mdEscape(notes)} |`,
    );
  }
  lines.push('');
  await writeFile(join(OUT, 'README.md'), `${lines.join('\n')}`);
}

async function main(): Promise<void> {
  versions = await toolVersions();
  for (const d of [KEYS, SIGS, REG]) {
    await rm(d, { recursive: true, force: true });
    await mkdir(d, { recursive: true });
  }
  const home = await makeToolHome('cosign-web-vectors-');
  try {
    await generated(home, 'cosign2', 'cosign2-pw', PASSWORD);
    await generated(home, 'cosign2', 'cosign2-empty', '');
    await generated(home, 'cosign3', 'cosign3-pw', PASSWORD);
    await generated(home, 'cosign3', 'cosign3-empty', '');
    for (const input of OPENSSL_INPUTS) await imported(home, input);
    await legacy(home);
    await blobSignatures(home);
    await registryObjects(home);
  } finally {
    await home.cleanup();
  }
  const index = {
    description: 'Test vectors made by the real cosign 2.5 / 3.1, skopeo 1.18, openssl and make-legacy-key.py; see README.md',
    generator: 'test/vectors/make-vectors.ts',
    versions,
    vectors: entries,
  };
  await writeFile(join(OUT, 'index.json'), `${JSON.stringify(index, null, 2)}\n`);
  await writeReadme();
  console.log(`wrote ${entries.length} vectors to ${OUT}`);
}

await main();
