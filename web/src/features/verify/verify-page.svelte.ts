/**
 * State of the Verify page (#/verify): the form, a run of shared/ops/verify.ts through the
 * page's RegistrySession (so through the relay that served the page, with the registry
 * credentials typed here), its progress, the result and what is derived from it (the JSON to
 * download, the policy snippets, a link to the same verification). A verification link fills the
 * form from the URL fragment and runs at once (link.ts describes the format). A pasted
 * containers-policy.json, when there is one, decides the verdict instead of the key, identity and
 * trust fields (shared/ops/containers-policy/apply.ts, loaded when first used).
 */
import { parseAnnotations } from '../../../../shared/ops/sign.ts';
import {
  checkIdentityRule,
  describeIdentityRule,
  type IdentityMode,
  type IdentityRule,
} from '../../../../shared/cosign/identity.ts';
import { verifyImage, type VerificationResult, type VerifyOptions } from '../../../../shared/ops/verify.ts';
import { policySnippets, type PolicySnippets } from '../../../../shared/ops/verify-snippets.ts';
import { parseReference, pinned, formatReference } from '../../../../shared/registry/reference.ts';
import type { RegistrySession } from '../../app/registry.svelte.ts';
import { VERIFY_ROUTE, readVerificationQuery, verificationLink } from '../../../../shared/cosign/link.ts';
import type { Route } from '../../../../shared/cosign/route.ts';
import type { TrustedKey, TrustedKeys } from './trusted-keys.svelte.ts';
import type { Reason } from '../../../../shared/errors.ts';
import { publicKeyPem } from '../../../../shared/crypto/keys.ts';
import { describeError, notVerified } from '../../lib/errors.ts';
import { FieldErrors, FormProblem, atField } from '../../lib/field-errors.svelte.ts';
import { readKeyFile } from '../../lib/small-file.ts';
import { publicKeyText, readPublicKeyText, type PublicKeyText } from '../../lib/public-key.ts';
import { hasCertificatePolicy, type SigstoreParams } from '../../../../shared/cosign/sigstore-params.ts';
import type { SigstoreTrust } from '../../../../shared/ops/verify-sigstore.ts';
import { sigstoreRoot } from '../../app/sigstore-root.svelte.ts';
import { SigstoreFields, heldRoot, type PublicGoodSource, type RootSource } from '../../lib/sigstore-fields.svelte.ts';

type VerifyStatus =
  | { state: 'idle' }
  | { state: 'working'; message: string; done: number; total: number }
  | { state: 'done'; result: VerificationResult }
  | { state: 'error'; code: string; message: string };

/** The fields a form error can point at (each has an element id on the page: {@link FIELD_IDS}). */
export type VerifyField = 'image' | 'key' | 'identity' | 'annotations';

/** The element id of each field a form error can point at. */
export const FIELD_IDS: Record<VerifyField, string> = {
  image: 'image-ref',
  key: 'public-key',
  identity: 'identity-rule',
  annotations: 'annotations',
};

/** A key of the viewer's own (the Keys page's), as Verify knows it. */
export interface OwnKey {
  name: string;
  spki: Uint8Array;
  fingerprint: { hex: string };
}

/** How a run of the form ended: a verdict shown, a form error marked at its field, or superseded. */
export type RunOutcome = 'verdict' | 'invalid' | 'superseded';

/** How the identity modes are offered, in order. */
export const IDENTITY_CHOICES: { mode: IdentityMode; label: string }[] = [
  { mode: 'ignore', label: "Not checked (cosign's default)" },
  { mode: 'matchRepoDigestOrExact', label: 'matchRepoDigestOrExact: this tag, or this repository by digest' },
  { mode: 'matchExact', label: 'matchExact: exactly the reference verified' },
  { mode: 'matchRepository', label: 'matchRepository: this repository, any tag' },
  { mode: 'exactReference', label: 'exactReference: one given reference' },
  { mode: 'exactRepository', label: 'exactRepository: one given repository' },
  { mode: 'remapIdentity', label: 'remapIdentity: a mirror of images signed elsewhere' },
];

/** One verification of the form, given what every verification takes (image, progress, signal). */
type Run = (common: VerifyOptions) => Promise<VerificationResult>;

export class VerifyPage {
  /** The form's fields, bound by the page. */
  image = $state('');
  keyText = $state('');
  identityMode = $state<IdentityMode>('ignore');
  dockerReference = $state('');
  dockerRepository = $state('');
  prefix = $state('');
  signedPrefix = $state('');
  annotationsText = $state('');
  requireEveryPlatform = $state(false);
  /** A containers-policy.json text; when given, it replaces the key, identity and trust fields. */
  containersPolicyText = $state('');
  username = $state('');
  password = $state('');
  /** Who a certificate must name, the trust root, the log rule, a private PKI and Rekor key. */
  readonly sigstore = new SigstoreFields();

  #status = $state.raw<VerifyStatus>({ state: 'idle' });
  /** Set when a verification link filled the form: the key it carried, read once, and its text in the field. */
  #linkKey = $state.raw<{ text: string; key: PublicKeyText } | null>(null);
  #linkIdentityDefault = $state(false);
  /** The containers policy in the form is the one a link supplied. */
  #linkPolicy = $state<string | null>(null);
  #jsonUrl = $state<string | null>(null);

  readonly #session: RegistrySession;
  readonly #trusted: TrustedKeys;
  readonly #origin: string;
  readonly #roots: RootSource | null;
  readonly #publicGood: PublicGoodSource;
  readonly #own: () => readonly OwnKey[];
  /** The form's field errors (an empty or malformed field), apart from the verdict. */
  readonly errors = new FieldErrors<VerifyField>();
  #abort: AbortController | null = null;

  constructor(
    session: RegistrySession,
    trusted: TrustedKeys,
    origin: string = location.origin,
    roots: RootSource | null = null,
    publicGood: PublicGoodSource = sigstoreRoot,
    own: () => readonly OwnKey[] = () => [],
  ) {
    this.#own = own;
    this.#session = session;
    this.#trusted = trusted;
    this.#origin = origin;
    this.#roots = roots;
    this.#publicGood = publicGood;
  }

  /**
   * The trust for certificates and log entries, loaded only when a signature needs it. Public good
   * is the freshest root this browser has (refreshed through TUF, cached, or shipped), named so.
   */
  async #trust(p: SigstoreParams): Promise<SigstoreTrust> {
    const { buildTrust } = await import('../../../../shared/ops/verify-sigstore.ts');
    let root: Parameters<typeof buildTrust>[0]['root'];
    const id = p.trustedRoot ?? 'public-good';
    if (id === 'public-good') {
      const chosen = await this.#publicGood.current();
      const { PUBLIC_GOOD_ROOT } = await import('../../../../shared/sigstore/shipped-roots.ts');
      root = { json: chosen.json ?? PUBLIC_GOOD_ROOT.json, name: chosen.name };
    } else if (id === 'staging') root = id;
    else root = await heldRoot(this.#roots, id);
    return buildTrust({
      root,
      caRootsPem: p.caRoots,
      caIntermediatesPem: p.caIntermediates,
      rekorPublicKey: p.rekorPublicKey,
    });
  }

  /**
   * Starts loading the certificate code (a lazy chunk) once the form names an identity, so the
   * first "Verify" does not wait for it; loading it again is free.
   */
  preloadSigstore(): void {
    if (hasCertificatePolicy(this.sigstore.params()))
      import('../../../../shared/ops/verify-sigstore.ts').catch(() => undefined);
  }

  get status(): VerifyStatus {
    return this.#status;
  }

  /** The link named no identity rule, so cosign's applies (and the result says so). */
  get linkIdentityDefault(): boolean {
    return this.#linkIdentityDefault;
  }

  /** Object URL of the result JSON. */
  get jsonUrl(): string | null {
    return this.#jsonUrl;
  }

  /** The key in the form, read (a link's key is not read again); null while the field is empty. */
  readonly key = $derived.by((): PublicKeyText | null => {
    const link = this.#linkKey;
    return link && this.keyText === link.text ? link.key : readPublicKeyText(this.keyText);
  });

  /** The key in the form is the one the link supplied (not replaced since). */
  readonly keyFromLink = $derived(this.#linkKey !== null && this.keyText.trim() === this.#linkKey.text.trim());

  /** A containers policy is pasted: it decides the verdict, the key and identity fields are not used. */
  readonly policyApplies = $derived(this.containersPolicyText.trim() !== '');

  /** The containers policy in the form came with the link that opened the page. */
  readonly policyFromLink = $derived(
    this.#linkPolicy !== null && this.containersPolicyText.trim() === this.#linkPolicy.trim(),
  );

  /** The viewer's name for the key in the form, when they trust it. */
  readonly trustedName = $derived.by(() => {
    const k = this.key;
    return k?.ok ? (this.#trusted.byFingerprint(k.fingerprint.hex)?.name ?? null) : null;
  });

  /** The name of the key in the form when it is one of the viewer's own keys (the Keys page's). */
  readonly ownName = $derived.by(() => {
    const k = this.key;
    return k?.ok ? (this.#own().find((o) => o.fingerprint.hex === k.fingerprint.hex)?.name ?? null) : null;
  });

  /** The current value of each field a form error can point at. */
  #values(): Record<VerifyField, string> {
    return { image: this.image, key: this.keyText, identity: this.identityMode, annotations: this.annotationsText };
  }

  /** The sentence of a form error at `field`, while the field is unchanged since. */
  fieldError(field: VerifyField): string | null {
    return this.errors.message(field, this.#values()[field]);
  }

  /** The field of the form error shown, if any. */
  get invalidField(): VerifyField | null {
    return this.errors.field(this.#values());
  }

  readonly result = $derived(this.status.state === 'done' ? this.status.result : null);

  readonly snippets = $derived.by((): PolicySnippets | null => {
    const r = this.result;
    return r?.verified && !r.policy.containersPolicy && (r.key.pem || r.policy.certificate) ? policySnippets(r) : null;
  });

  /** A verification link for what was just verified (image pinned to the digest verified). */
  readonly shareLink = $derived.by((): string | null => {
    const r = this.result;
    const k = this.key;
    const sigstore = this.sigstore.params();
    const policy = r?.policy.containersPolicy ? this.containersPolicyText.trim() : '';
    if (!r?.image.digest || !r.image.reference || !(policy || k?.ok || hasCertificatePolicy(sigstore))) return null;
    try {
      const ref = parseReference(r.image.reference);
      const image = formatReference({ ...pinned(ref, r.image.digest), ...(ref.tag ? { tag: ref.tag } : {}) });
      if (policy) return verificationLink(this.#origin, { image, containersPolicy: policy });
      return verificationLink(this.#origin, {
        image,
        spki: k?.ok ? k.spki : undefined,
        sigstore,
        identity: r.policy.identity,
        annotations: r.policy.annotations,
        requireEveryPlatform: r.policy.requireEveryPlatform,
      });
    } catch {
      return null;
    }
  });

  /**
   * The identity rule of the form.
   * @throws VerificationError VERIFY_POLICY_INVALID
   */
  identityRule(): IdentityRule {
    const rule = {
      type: this.identityMode,
      dockerReference: this.dockerReference.trim(),
      dockerRepository: this.dockerRepository.trim(),
      prefix: this.prefix.trim(),
      signedPrefix: this.signedPrefix.trim(),
    } as IdentityRule;
    return checkIdentityRule(rule);
  }

  /** What the chosen rule demands, or why it is incomplete. */
  readonly ruleDescription = $derived.by(() => {
    try {
      return describeIdentityRule(this.identityRule());
    } catch (e) {
      return describeError(e).message;
    }
  });

  /**
   * Fills the form from a verification link's fragment. Returns false when the fragment carries
   * no verification (a bare `#/verify`); a broken link sets the status to say why.
   */
  loadLink({ path, query }: Route): boolean {
    if (path !== VERIFY_ROUTE || query.trim() === '') return false;
    this.#reset();
    try {
      const link = readVerificationQuery(query);
      this.image = link.image;
      // The field shows the key as PEM, whichever form the link carried it in.
      if (link.spki && link.algorithm) {
        const key = publicKeyText({ spki: link.spki, algorithm: link.algorithm });
        this.keyText = key.pem.trim();
        this.#linkKey = { text: this.keyText, key };
      } else this.keyText = '';
      this.sigstore.fill(link.sigstore);
      this.#linkIdentityDefault = !link.identityGiven;
      this.identityMode = link.identity.type;
      this.dockerReference = link.identity.type === 'exactReference' ? link.identity.dockerReference : '';
      this.dockerRepository = link.identity.type === 'exactRepository' ? link.identity.dockerRepository : '';
      this.prefix = link.identity.type === 'remapIdentity' ? link.identity.prefix : '';
      this.signedPrefix = link.identity.type === 'remapIdentity' ? link.identity.signedPrefix : '';
      this.annotationsText = Object.entries(link.annotations)
        .map(([k, v]) => `${k}=${v}`)
        .join('\n');
      this.requireEveryPlatform = link.requireEveryPlatform;
      this.containersPolicyText = link.containersPolicy ?? '';
      this.#linkPolicy = link.containersPolicy;
      return true;
    } catch (e) {
      this.#fail(describeError(e));
      return false;
    }
  }

  /** The status line says why the image is not verified. */
  #fail(reason: Reason): void {
    this.#status = notVerified(reason);
  }

  #reset(): void {
    this.#abort?.abort(new DOMException('superseded', 'AbortError'));
    this.#status = { state: 'idle' };
    this.errors.clear();
    this.#linkKey = null;
    this.#linkIdentityDefault = false;
    this.#linkPolicy = null;
  }

  /**
   * How to verify what the form says: a containers policy when one is pasted, else the key and
   * identity fields. Throws (with a reason to show) when the form is incomplete.
   */
  #plan(): Run {
    const client = this.#session.client;
    const ref = atField('image', () => parseReference(this.image.trim()), describeError);
    if (this.username.trim()) this.#session.setCredentials(ref.registry, this.username.trim(), this.password);
    const policy = this.containersPolicyText.trim();
    if (policy)
      return async (common) => {
        const { verifyWithContainersPolicy } = await import('../../../../shared/ops/containers-policy/apply.ts');
        return verifyWithContainersPolicy(client, policy, common);
      };
    const key = this.key;
    const sigstore = this.sigstore.params();
    const byCertificate = hasCertificatePolicy(sigstore);
    if (!key && !byCertificate)
      throw new FormProblem('key', {
        code: 'KEY_PEM_INVALID',
        message:
          'Paste the public key (PEM) or choose a key file, give the certificate identity and OIDC issuer, or paste a containers policy.',
      });
    if (key && !key.ok) throw new FormProblem('key', { code: 'KEY_PEM_INVALID', message: key.message });
    const identity = atField('identity', () => this.identityRule(), describeError);
    const annotations = atField('annotations', () => parseAnnotations(this.annotationsText), describeError);
    return (common) =>
      verifyImage(client, {
        ...common,
        spki: key?.ok ? key.spki : undefined,
        certificate: byCertificate ? sigstore.policy : undefined,
        tlog: sigstore.tlog,
        trust: () => this.#trust(sigstore),
        identity,
        annotations,
        requireEveryPlatform: this.requireEveryPlatform,
      });
  }

  /**
   * Verifies what the form says. Never throws: the status says how it went, or, for a form that
   * cannot be verified as filled in, the field in error says why (and no verdict is shown).
   */
  async run(): Promise<RunOutcome> {
    this.#abort?.abort(new DOMException('superseded', 'AbortError'));
    const abort = new AbortController();
    this.#abort = abort;
    if (this.#jsonUrl) URL.revokeObjectURL(this.#jsonUrl);
    this.#jsonUrl = null;
    this.errors.clear();
    let verify: Run;
    try {
      if (!this.image.trim())
        throw new FormProblem('image', {
          code: 'REGISTRY_REFERENCE_INVALID',
          message: 'Type the image reference to verify.',
        });
      verify = this.#plan();
    } catch (e) {
      if (!(e instanceof FormProblem)) throw e;
      const problem = e as FormProblem<VerifyField>;
      this.errors.set(problem, this.#values()[problem.field]);
      this.#status = { state: 'idle' };
      return 'invalid';
    }
    this.#status = { state: 'working', message: 'Verifying…', done: 0, total: 1 };
    let lastPaint = 0;
    try {
      const result = await verify({
        image: this.image.trim(),
        // The viewer's trusted keys, then their own: a signature by either is named, not "unknown".
        knownKeys: [...this.#trusted.known(), ...this.#own().map(({ name, spki }) => ({ name, spki }))],
        signal: abort.signal,
        // Chromium keeps 6 connections per host; a deeper queue keeps them busy between responses.
        concurrency: 12,
        onProgress: (p) => {
          // At most one repaint per animation frame, however fast signatures are checked.
          const now = performance.now();
          if (this.#abort !== abort || (now - lastPaint < 16 && p.done < p.total)) return;
          lastPaint = now;
          this.#status = { state: 'working', message: p.message, done: p.done, total: p.total };
        },
      });
      if (this.#abort !== abort) return 'superseded';
      // By the key the verification used, not the field, which may have been edited meanwhile.
      const used = result.key.fingerprint;
      if (used) result.key.trustedName = this.#trusted.byFingerprint(used.slice('sha256:'.length))?.name ?? null;
      this.#jsonUrl = URL.createObjectURL(
        new Blob([`${JSON.stringify(result, null, 2)}\n`], { type: 'application/json' }),
      );
      this.#status = { state: 'done', result };
      return 'verdict';
    } catch (e) {
      if (this.#abort !== abort) return 'superseded';
      this.#fail(describeError(e));
      return 'verdict';
    }
  }

  /** Reads a key file chosen in the form into the key field. */
  async readKeyFile(file: File | undefined): Promise<void> {
    if (!file) return;
    try {
      this.keyText = (await readKeyFile(file, 'a public key')).trim();
    } catch (e) {
      this.errors.set(new FormProblem('key', describeError(e)), this.keyText);
    }
  }

  /** Puts one of the viewer's own keys (the Keys page's) in the form, by fingerprint. */
  useOwnKey(fingerprintHex: string): void {
    const k = this.#own().find((o) => o.fingerprint.hex === fingerprintHex);
    if (k) this.keyText = publicKeyPem(k.spki).trim();
  }

  /** Puts a trusted key in the form. */
  useTrustedKey(k: TrustedKey): void {
    this.keyText = this.#trusted.pem(k);
  }

  /** Trusts the key in the form under `name`. Returns an error sentence, or null. */
  trustKey(name: string): string | null {
    const k = this.key;
    if (!k?.ok) return 'There is no valid key in the form to trust.';
    try {
      this.#trusted.add(name, k.spki);
      return null;
    } catch (e) {
      return describeError(e).message;
    }
  }

  /** File name for the downloaded result. */
  get jsonName(): string {
    const d = this.result?.image.digest;
    return `verification-${d ? d.slice(7, 19) : 'result'}.json`;
  }
}
