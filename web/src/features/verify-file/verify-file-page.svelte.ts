/**
 * State of the Verify file page (#/verify-file): what `cosign verify-blob --bundle` and
 * sigstore's `verify-bundle` do, in the browser. The form (the file or its digest, the bundle, a
 * public key or the identity a certificate must name, the trust root, the log rule, a private
 * PKI), the file's hash (a worker reads it in chunks; its bytes are kept only when small enough to
 * need them), a run of shared/sigstore/verify-file.ts (loaded only then), its result, the JSON to
 * download and a link to the same verification (shared/cosign/file-link.ts). A link fills the
 * form from the URL fragment and runs at once.
 */
import { SignatureError, type Reason } from '../../../../shared/errors.ts';
import {
  VERIFY_FILE_ROUTE,
  fileVerificationLink,
  readFileVerificationQuery,
  sha256DigestBytes,
  type FileSigstoreParams,
} from '../../../../shared/cosign/file-link.ts';
import type { Route } from '../../../../shared/cosign/route.ts';
import type { FileVerification, FileVerifyRequest } from '../../../../shared/sigstore/verify-file.ts';
import { describeError, notVerified } from '../../lib/errors.ts';
import { FieldErrors, FormProblem, atField } from '../../lib/field-errors.svelte.ts';
import { readKeyFile } from '../../lib/small-file.ts';
import { publicKeyText, readPublicKeyText, type PublicKeyText } from '../../lib/public-key.ts';
import { SigstoreFields, heldRoot, type PublicGoodSource, type RootSource } from '../../lib/sigstore-fields.svelte.ts';
import { sigstoreRoot } from '../../app/sigstore-root.svelte.ts';
import { policyWords } from '../../lib/identity-fields.ts';
import { hashFileInWorker } from './hash-client.ts';
import { formatBytes } from '../../lib/bytes.ts';

/** Files up to this size keep their bytes (an Ed25519 signature is over the bytes, not a digest). */
export const KEEP_BYTES_MAX = 64 * 1024 * 1024;
/** A bundle file larger than this is not a bundle. */
const MAX_BUNDLE_BYTES = 32 * 1024 * 1024;

export type FileStatus =
  | { state: 'idle' }
  | { state: 'working'; message: string; done?: number; total?: number }
  | { state: 'done'; result: FileVerification; summary: string }
  | { state: 'error'; code: string; message: string };

/** The fields a form error can point at. */
export type FileField = 'digest' | 'bundle' | 'key';

/** The element id of each field a form error can point at. */
export const FILE_FIELD_IDS: Record<FileField, string> = {
  digest: 'vf-digest',
  bundle: 'vf-bundle-json',
  key: 'vf-public-key',
};

/** The file chosen: its hash (while and after hashing) and, when small, its bytes. */
interface ChosenFile {
  name: string;
  size: number;
  done: number;
  digest: string | null;
  /** Settles with the digest and bytes, or the reason hashing failed. */
  ready: Promise<{ digest: string; bytes?: Uint8Array }>;
}

/** What a verification was asked, kept for the link to it. */
interface Asked {
  digest: string;
  bundle: string;
  spki: Uint8Array | undefined;
  sigstore: FileSigstoreParams;
}

/** Who signed, in a sentence's words. */
export function signerWords(r: FileVerification): string {
  const s = r.signer;
  return s.kind === 'key'
    ? `the key sha256:${s.fingerprint}`
    : `${s.identity} (OIDC issuer ${s.issuer ?? 'none'}, CA ${s.authority})`;
}

export class VerifyFilePage {
  /** The form's fields, bound by the page. */
  digestText = $state('');
  bundleText = $state('');
  keyText = $state('');
  /** Who a certificate must name, the trust root, the log rule, a private PKI. */
  readonly sigstore = new SigstoreFields();

  #file = $state<ChosenFile | null>(null);
  #status = $state.raw<FileStatus>({ state: 'idle' });
  #asked = $state.raw<Asked | null>(null);
  #fromLink = $state(false);
  #jsonUrl = $state<string | null>(null);
  /** Reads of chosen files (bundle, key) still under way: a run waits for them. */
  #reading: Promise<unknown>[] = [];
  /** The form's field errors (an empty or malformed field), apart from the verdict. */
  readonly errors = new FieldErrors<FileField>();
  #hashAbort: AbortController | null = null;
  #run = 0;
  /** A trusted root the last run lacked (a link named it): loading it runs again. */
  #awaitingRoot: string | null = null;

  readonly #origin: string;
  readonly #roots: RootSource;
  readonly #publicGood: PublicGoodSource;

  constructor(roots: RootSource, origin: string = location.origin, publicGood: PublicGoodSource = sigstoreRoot) {
    this.#roots = roots;
    this.#origin = origin;
    this.#publicGood = publicGood;
  }

  get status(): FileStatus {
    return this.#status;
  }

  get file(): ChosenFile | null {
    return this.#file;
  }

  /** The form was filled by a link (what it asks was chosen by whoever made the link). */
  get fromLink(): boolean {
    return this.#fromLink;
  }

  get jsonUrl(): string | null {
    return this.#jsonUrl;
  }

  readonly result = $derived(this.#status.state === 'done' ? this.#status.result : null);

  /**
   * What the verdict checked, and by whom: what was required of the signer (the verdict names the
   * file and who signed it), the trust root, and who chose them.
   */
  readonly checked = $derived.by((): { label: string; value: string; mono?: boolean }[] => {
    const r = this.result;
    if (!r) return [];
    const key = this.key;
    return [
      {
        label: 'Must be signed by',
        value: key?.ok ? `the key sha256:${key.fingerprint.hex}` : policyWords(this.sigstore.params().policy),
        mono: Boolean(key?.ok),
      },
      { label: 'Trust root', value: r.trustedRoot.name },
      {
        label: 'Chosen by',
        value: this.#fromLink ? 'this link (whoever made it chose the bundle and the signer)' : 'you',
      },
    ];
  });

  /** The key in the form, read; null while the field is empty. */
  readonly key = $derived<PublicKeyText | null>(readPublicKeyText(this.keyText));

  /** A link to what was just verified. */
  readonly shareLink = $derived.by((): string | null => {
    const a = this.#asked;
    if (!this.result || !a) return null;
    try {
      return fileVerificationLink(this.#origin, {
        digest: a.digest,
        bundle: a.bundle,
        spki: a.spki,
        sigstore: a.sigstore,
      });
    } catch {
      return null;
    }
  });

  /** File name for the downloaded result. */
  get jsonName(): string {
    const d = this.result?.artifact;
    return `verification-${d ? d.slice(0, 12) : 'result'}.json`;
  }

  /**
   * A file chosen to verify (or none): hashed at once in a worker, its digest then shown in the
   * digest field. Its bytes are kept only up to KEEP_BYTES_MAX.
   */
  chooseFile(file: File | undefined): void {
    this.#hashAbort?.abort(new DOMException('another file', 'AbortError'));
    this.#hashAbort = null;
    if (!file) {
      this.#file = null;
      return;
    }
    const abort = new AbortController();
    this.#hashAbort = abort;
    const chosen: ChosenFile = { name: file.name, size: file.size, done: 0, digest: null, ready: null! };
    chosen.ready = (async () => {
      const digest = await hashFileInWorker(
        file,
        (done) => {
          if (this.#file?.ready === chosen.ready) this.#file.done = done;
        },
        abort.signal,
      );
      const bytes = file.size <= KEEP_BYTES_MAX ? new Uint8Array(await file.arrayBuffer()) : undefined;
      if (this.#file?.ready === chosen.ready) {
        this.#file.digest = digest;
        this.digestText = digest;
      }
      return { digest, ...(bytes ? { bytes } : {}) };
    })();
    chosen.ready.catch(() => undefined);
    this.#file = chosen;
  }

  /** The digest field was typed in: a file chosen before no longer applies. */
  digestTyped(): void {
    if (this.#file && this.digestText.trim() !== this.#file.digest) this.chooseFile(undefined);
  }

  /** A bundle file chosen: its text lands in "Bundle JSON". */
  chooseBundleFile(file: File | undefined): void {
    if (!file) return;
    const read = (async () => {
      if (file.size > MAX_BUNDLE_BYTES)
        throw new SignatureError(
          'SIGNATURE_BUNDLE_INVALID',
          `"${file.name}" is ${formatBytes(file.size)}: too large to be a Sigstore bundle.`,
        );
      this.bundleText = await file.text();
    })();
    this.#track(read, 'bundle');
  }

  /** A key file chosen: its text lands in "Public key". */
  chooseKeyFile(file: File | undefined): void {
    if (!file) return;
    this.#track(
      (async () => {
        this.keyText = (await readKeyFile(file, 'a public key')).trim();
      })(),
      'key',
    );
  }

  /** A file being read into `field`: a run waits for it; a failure is that field's error. */
  #track(p: Promise<unknown>, field: FileField): void {
    const read = p.catch((e: unknown) => {
      throw new FormProblem(field, describeError(e));
    });
    this.#reading.push(read);
    read.catch((problem: FormProblem<FileField>) => this.errors.set(problem, this.#values()[field]));
  }

  /** The current value of each field a form error can point at. */
  #values(): Record<FileField, string> {
    return { digest: this.digestText, bundle: this.bundleText, key: this.keyText };
  }

  /** The sentence of a form error at `field`, while the field is unchanged since. */
  fieldError(field: FileField): string | null {
    return this.errors.message(field, this.#values()[field]);
  }

  /** The field of the form error shown, if any. */
  get invalidField(): FileField | null {
    return this.errors.field(this.#values());
  }

  /**
   * Fills the form from a file verification link. Returns true when it can run at once (it names
   * a digest); a broken link sets the status to say why.
   */
  loadLink({ path, query }: Route): boolean {
    if (path !== VERIFY_FILE_ROUTE || query.trim() === '') return false;
    try {
      const link = readFileVerificationQuery(query);
      this.chooseFile(undefined);
      this.digestText = link.digest ?? '';
      this.bundleText = link.bundleJson;
      this.keyText =
        link.spki && link.algorithm ? publicKeyText({ spki: link.spki, algorithm: link.algorithm }).pem.trim() : '';
      this.sigstore.fill(link.sigstore);
      this.#fromLink = true;
      this.#status = { state: 'idle' };
      this.errors.clear();
      return link.digest !== null;
    } catch (e) {
      this.#fail(describeError(e));
      return false;
    }
  }

  #fail(reason: Reason): void {
    this.#status = notVerified(reason);
  }

  /** The artifact: the chosen file's digest (and bytes), else the digest typed. */
  async #artifact(run: number): Promise<{ digest: string; artifact: FileVerifyRequest['artifact'] }> {
    const file = this.#file;
    if (file) {
      if (!file.digest)
        this.#status = { state: 'working', message: `Hashing ${file.name}…`, done: 0, total: file.size };
      const { digest, bytes } = await file.ready;
      if (run === this.#run) this.#status = { state: 'working', message: 'Verifying the bundle…' };
      return { digest, artifact: { sha256: sha256DigestBytes(digest), ...(bytes ? { bytes } : {}) } };
    }
    if (!this.digestText.trim())
      throw new FormProblem('digest', {
        code: 'VERIFY_POLICY_INVALID',
        message: 'Choose the file to verify, or type its digest (sha256:…).',
      });
    const digest = this.digestText.trim().toLowerCase();
    return { digest, artifact: { sha256: atField('digest', () => sha256DigestBytes(digest), describeError) } };
  }

  /**
   * The trust root's bytes and its name in the result: public good is the freshest root this
   * browser has (as #/verify uses it); staging is shipped; any other is one held here.
   */
  async #rootChoice(): Promise<{
    request: Pick<FileVerifyRequest, 'trustedRootJson' | 'shippedRoot'>;
    name: string | null;
  }> {
    const id = this.sigstore.trustRoot;
    if (id === 'staging') return { request: { shippedRoot: id }, name: null };
    if (id === 'public-good') {
      const chosen = await this.#publicGood.current();
      return {
        request: chosen.json ? { trustedRootJson: chosen.json } : { shippedRoot: 'public-good' },
        name: chosen.name,
      };
    }
    const held = await heldRoot(this.#roots, id);
    return { request: { trustedRootJson: held.json }, name: held.name };
  }

  /**
   * Verifies what the form says. Never throws: the status says how it went, or, for a form that
   * cannot be verified as filled in, the field in error says why (and no verdict is shown).
   * Resolves to what it showed ('superseded' when a later run took over).
   */
  async run(): Promise<'verdict' | 'invalid' | 'superseded'> {
    const run = ++this.#run;
    this.errors.clear();
    this.#awaitingRoot = null;
    if (this.#jsonUrl) URL.revokeObjectURL(this.#jsonUrl);
    this.#jsonUrl = null;
    this.#asked = null;
    this.#status = { state: 'working', message: 'Verifying the bundle…' };
    try {
      await Promise.all(this.#reading.splice(0));
      const { digest, artifact } = await this.#artifact(run);
      const bundle = this.bundleText.trim();
      if (!bundle)
        throw new FormProblem('bundle', {
          code: 'SIGNATURE_BUNDLE_INVALID',
          message: 'Choose the Sigstore bundle, or paste its JSON.',
        });
      const key = this.key;
      if (key && !key.ok) throw new FormProblem('key', { code: 'VERIFY_POLICY_INVALID', message: key.message });
      const sigstore = this.sigstore.params();
      const root = await this.#rootChoice();
      const { verifyFileBundle } = await import('../../../../shared/sigstore/verify-file.ts');
      const result = await verifyFileBundle({
        bundleJson: bundle,
        artifact,
        keyPem: key?.ok ? key.pem : undefined,
        policy: sigstore.policy,
        ...root.request,
        caRootsPem: sigstore.caRoots,
        caIntermediatesPem: sigstore.caIntermediates,
        tlog: sigstore.tlog,
      });
      if (run !== this.#run) return 'superseded';
      if (root.name) result.trustedRoot.name = root.name;
      this.#asked = { digest, bundle, spki: key?.ok ? key.spki : undefined, sigstore };
      this.#jsonUrl = URL.createObjectURL(
        new Blob([`${JSON.stringify(result, null, 2)}\n`], { type: 'application/json' }),
      );
      this.#status = { state: 'done', result, summary: `Verified: ${digest} signed by ${signerWords(result)}.` };
      return 'verdict';
    } catch (e) {
      if (run !== this.#run) return 'superseded';
      if (e instanceof FormProblem) {
        const problem = e as FormProblem<FileField>;
        this.errors.set(problem, this.#values()[problem.field]);
        this.#status = { state: 'idle' };
        return 'invalid';
      }
      const reason = describeError(e);
      if (reason.code === 'VERIFY_TRUSTED_ROOT_UNKNOWN') this.#awaitingRoot = this.sigstore.trustRoot;
      this.#fail(reason);
      return 'verdict';
    }
  }

  /** The roots held here changed: when one a run lacked arrived (and is still chosen), run again. */
  rootsChanged(held: readonly { id: string }[]): ReturnType<VerifyFilePage['run']> | null {
    const id = this.#awaitingRoot;
    if (!id || id !== this.sigstore.trustRoot || !held.some((r) => r.id === id)) return null;
    this.#awaitingRoot = null;
    return this.run();
  }

  /** What the status line shows while hashing a chosen file. */
  readonly hashing = $derived.by(() => {
    const f = this.#file;
    if (!f || f.digest) return null;
    return {
      message: `Hashing ${f.name}: ${formatBytes(f.done)} of ${formatBytes(f.size)}`,
      done: f.done,
      total: f.size,
    };
  });
}
