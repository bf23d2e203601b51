/**
 * State of the Sign page (#/sign): what the person typed, what the reference resolved to, the progress of
 * signing and the result with its verification link. The signing itself is shared/ops/sign.ts;
 * with an external signer, the bytes and checks are shared/ops/external.ts and the signatures
 * handed back wait in ExternalSigning until all of them check.
 */
import { KeyError, KeylessError, Pkcs11Error, SignatureError } from '../../../../shared/errors.ts';
import { parsePublicKey } from '../../../../shared/crypto/keys.ts';
import { fingerprint } from '../../../../shared/crypto/webcrypto.ts';
import {
  parseReference,
  pinned,
  formatReference,
  manifestReference,
  repositoryName,
  type ImageReference,
} from '../../../../shared/registry/reference.ts';
import { platformName } from '../../../../shared/registry/mediatypes.ts';
import {
  defaultIdentity,
  parseAnnotations,
  planSigning,
  signImage,
  signingLockKeys,
  type SignPlan,
  type SignResult,
  type Signer,
  type SigningInput,
  type TagLock,
} from '../../../../shared/ops/sign.ts';
import type { TagLockAhead } from '../../../../shared/ops/tag-writer.ts';
import { listBytesToSign, missingSignatures, preparedSigner } from '../../../../shared/ops/external.ts';
import { signedBefore, type SignedBefore } from '../../../../shared/ops/signed-before.ts';
import { prepareKey, type PreparedKey } from '../../../../shared/cosign/verify-signature.ts';
import type { KeyStore } from '../keys/keystore.svelte.ts';
import type { RegistrySession } from '../../app/registry.svelte.ts';
import type { RepoRef } from '../../../../shared/registry/client.ts';
import { verificationLink } from '../../../../shared/cosign/link.ts';
import { ExternalSigning } from './external-signing.svelte.ts';
import { describeError } from '../../lib/errors.ts';
import { readKeyFile } from '../../lib/small-file.ts';
import type { SigningServicesChoice } from './signing-services.svelte.ts';
import { relayedServiceUrl, serviceHost } from './service-offers.ts';
import type { SigningServices } from '../../../../shared/ops/sign-services.ts';
import { logIn, openLoginWindow } from './keyless-login.ts';

export type IdentityMode = 'repository' | 'repository:tag';

/**
 * Sign with a key the page holds (or reaches, for hardware keys), with an external signer, or with
 * your identity (keyless: an OpenID Connect login, a short-lived certificate from Fulcio).
 */
type SignerMode = 'page' | 'external' | 'identity';

/** The OAuth client id of keyless signing (Sigstore's public-good issuer knows the page as `sigstore`, as cosign). */
const KEYLESS_CLIENT_ID = 'sigstore';

/** The consent key of keyless signing at an issuer: the identity, not a key, becomes public. */
const IDENTITY_CONSENT = 'identity ';

/** The external signer's public key choice that means "the PEM pasted or chosen below". */
export const PASTED_KEY = 'pasted';

type SignStatus =
  | { state: 'idle' }
  | { state: 'working'; message: string; done: number; total: number }
  | { state: 'signed'; message: string }
  | { state: 'error'; code: string; message: string };

const SETTINGS_KEY = 'cosign-web.sign-settings';

export class SignPage {
  /** The form's fields, bound by the page. */
  imageText = $state('');
  keyId = $state('');
  username = $state('');
  password = $state('');
  annotationsText = $state('');
  legacy = $state(true);
  bundle = $state(true);
  mode = $state<SignerMode>('page');
  /** A hardware key's token PIN: memory only, sent only to /pkcs11/sign, cleared after each signing run. */
  pin = $state('');
  /** The external signer's public key: a page key's id, or PASTED_KEY. */
  externalKeyId = $state('');
  externalPem = $state('');
  readonly external = new ExternalSigning();

  /** null: the default (repository:tag when a tag was typed, else repository). */
  #identityChoice = $state<IdentityMode | null>(null);
  #status = $state<SignStatus>({ state: 'idle' });
  #plan = $state.raw<SignPlan | null>(null);
  #planned = $state.raw<ImageReference | null>(null);
  #result = $state.raw<SignResult | null>(null);
  #tags = $state.raw<string[] | null>(null);
  #link = $state('');
  #signedBefore = $state.raw<SignedBefore | null>(null);
  /** The verification link of the signatures already there, shown when "sign again?" is declined. */
  #beforeLink = '';
  /** `<digest> <key fingerprint>` last found without this key's signatures: a retry (a wrong PIN) skips the read. */
  #noneBefore = '';
  /** The key fingerprint (hex) whose first log upload waits for the person's consent, or null. */
  #consentFor = $state<string | null>(null);
  /** The transparency log and timestamp authority options (none when the page offers no services). */
  readonly services: SigningServicesChoice | undefined;

  readonly #keys: KeyStore;
  readonly #registry: RegistrySession;
  readonly #lock: TagLock | undefined;

  constructor(keys: KeyStore, registry: RegistrySession, lock?: TagLock, image = '', services?: SigningServicesChoice) {
    this.services = services;
    this.#keys = keys;
    this.#registry = registry;
    this.#lock = lock;
    this.imageText = image;
    try {
      const saved = JSON.parse(localStorage.getItem(SETTINGS_KEY) ?? '{}') as { legacy?: unknown; bundle?: unknown };
      if (typeof saved.legacy === 'boolean') this.legacy = saved.legacy;
      if (typeof saved.bundle === 'boolean') this.bundle = saved.bundle;
    } catch {
      localStorage.removeItem(SETTINGS_KEY);
    }
  }

  get status(): SignStatus {
    return this.#status;
  }

  /** What the reference resolved to: the manifests that will be signed. */
  get plan(): SignPlan | null {
    return this.#plan;
  }

  /** The reference the plan was made for (normalised). */
  get planned(): ImageReference | null {
    return this.#planned;
  }

  get result(): SignResult | null {
    return this.#result;
  }

  /** The tags of the looked-up repository (null while unknown or when listing is not allowed). */
  get tags(): string[] | null {
    return this.#tags;
  }

  /**
   * Set when signing stopped to ask "sign again?": the image already carries signatures by the
   * chosen key. Cleared by signing again or declining.
   */
  get signedBefore(): SignedBefore | null {
    return this.#signedBefore;
  }

  /** The question asked before signing again, or ''. */
  get signAgainQuestion(): string {
    const b = this.#signedBefore;
    if (!b) return '';
    const when = b.latest ? ` on ${b.latest.replace('T', ' ').replace(/Z$/, ' UTC')}` : '';
    const kinds = [b.legacy && `${b.legacy} legacy .sig`, b.bundle && `${b.bundle} Sigstore bundle`].filter(Boolean);
    const plural = (n: number) => `${n} signature${n === 1 ? '' : 's'}`;
    return (
      `Already signed by this key${when} — sign again? The image carries ${plural(b.byKey)} by this key ` +
      `(${kinds.join(', ')}) of ${plural(b.total)} in all; signing again adds another.`
    );
  }

  /** Answers "no" to "sign again?": nothing is written. */
  declineSignAgain(): void {
    const b = this.#signedBefore;
    this.#signedBefore = null;
    if (!b) return;
    this.#status = { state: 'signed', message: `Not signed again: the image keeps its ${b.total} signatures.` };
    // Its signatures by this key are there to verify: the link to them, as after signing.
    this.#link = this.#beforeLink;
  }

  /**
   * Set when signing stopped to ask, before this key's first log upload, whether what the log
   * keeps may become public forever. Cleared by either answer.
   */
  get consentQuestion(): string {
    if (!this.#consentFor) return '';
    const log =
      this.services && 'service' in this.services.rekorOffer ? this.services.rekorOffer.service.url : 'the log';
    if (this.#consentFor.startsWith(IDENTITY_CONSENT))
      return (
        `Sign with your identity publicly? ${log} is a transparency log: it keeps, publicly and forever, the digest ` +
        `of what is signed and the certificate naming the identity you log in with (your email address) at ` +
        `${this.#consentFor.slice(IDENTITY_CONSENT.length)}, so anyone can see that you signed it. An entry cannot be ` +
        `removed. Asked once for each issuer.`
      );
    return (
      `Log this signature publicly? ${log} is a transparency log: it keeps, publicly and forever, the digest of what ` +
      `is signed and this public key (fingerprint sha256:${this.#consentFor.slice(0, 16)}…), so anyone can see that ` +
      `this key signed it. An entry cannot be removed. Asked once for each key.`
    );
  }

  /** "Log publicly": remembers the consent for this key and signs. */
  async giveConsent(): Promise<void> {
    if (this.#consentFor) this.services?.consent(this.#consentFor);
    this.#consentFor = null;
    await this.sign();
  }

  /** "Don't log": nothing is uploaded or written. */
  declineConsent(): void {
    this.#consentFor = null;
    this.#status = {
      state: 'signed',
      message:
        'Not signed: nothing was logged or written. Choose "None" under "Transparency log" to sign without a log.',
    };
  }

  /** The verification link of the signature just pushed (or of those already there, when "sign again?" was declined), or ''. */
  get link(): string {
    return this.#link;
  }

  /** Chooses what `docker-reference` says. */
  chooseIdentity(mode: IdentityMode): void {
    this.#identityChoice = mode;
  }

  /**
   * Keeps the signing key chosen valid as keys come and go: else the key most recently unlocked,
   * generated, connected or used that can sign, else the newest.
   */
  keepSigningKey(): void {
    const usable = this.#keys.usable;
    if (!usable.some((k) => k.id === this.keyId)) {
      this.keyId = usable.find((k) => k.id === this.#keys.lastUsedId)?.id ?? usable.at(-1)?.id ?? '';
    }
  }

  /**
   * Keeps the external signer's public key valid: any key the page knows (locked ones too: only
   * the public key is needed), preferring the most recently used, else a pasted one.
   */
  keepExternalKeyChoice(): void {
    const all = this.#keys.all;
    if (this.externalKeyId !== PASTED_KEY && !all.some((k) => k.id === this.externalKeyId)) {
      this.externalKeyId = all.find((k) => k.id === this.#keys.lastUsedId)?.id ?? all.at(-1)?.id ?? PASTED_KEY;
    }
  }

  /** Forgets what must not outlive the page: the prepared bytes' object URLs, a PIN typed and not used. */
  dispose(): void {
    this.external.clear();
    this.pin = '';
  }

  /** Reads a chosen cosign.pub into the external signer's public key field. */
  async readExternalKeyFile(file: File | undefined): Promise<void> {
    if (!file) return;
    try {
      this.externalPem = await readKeyFile(file, 'a public key');
    } catch (e) {
      this.#status = { state: 'error', ...describeError(e) };
    }
  }

  /** Picks another tag of the looked-up repository and looks it up. */
  chooseTag(tag: string): void {
    if (!this.#planned) return;
    this.imageText = `${repositoryName(this.#planned)}:${tag}`;
    void this.check();
  }

  saveSettings(): void {
    localStorage.setItem(SETTINGS_KEY, JSON.stringify({ legacy: this.legacy, bundle: this.bundle }));
  }

  /** The typed reference, parsed once per edit: every step below uses this one reading. */
  readonly #parsed = $derived.by((): { ref: ImageReference } | { error: unknown } => {
    try {
      return { ref: parseReference(this.imageText) };
    } catch (error) {
      return { error };
    }
  });

  /** The parsed reference, or null while the text is not one. */
  get reference(): ImageReference | null {
    const parsed = this.#parsed;
    return 'ref' in parsed ? parsed.ref : null;
  }

  /**
   * The parsed reference.
   * @throws RegistryError REGISTRY_REFERENCE_INVALID, saying why the text is not one.
   */
  #reference(): ImageReference {
    const parsed = this.#parsed;
    if ('error' in parsed) throw parsed.error;
    return parsed.ref;
  }

  /** The identity mode in force. */
  readonly identityMode = $derived<IdentityMode>(
    this.#identityChoice ?? (this.reference?.tag ? 'repository:tag' : 'repository'),
  );

  /** What `docker-reference` will say. */
  readonly dockerReference = $derived.by(() => {
    const ref = this.reference;
    if (!ref) return '';
    return this.identityMode === 'repository:tag' && ref.tag
      ? defaultIdentity(repositoryName(ref), ref.tag)
      : repositoryName(ref);
  });

  #credentials(ref: ImageReference): void {
    this.#registry.setCredentials(ref.registry, this.username.trim(), this.password);
  }

  /** The plan already made for `ref` (looked up, or the last signing's), or null. */
  #planOf(ref: ImageReference): SignPlan | null {
    const same = this.planned && formatReference(this.planned) === formatReference(ref);
    return same ? this.plan : null;
  }

  /**
   * Opens the uploads of one image's signatures in `ref`'s repository (payload and `.sig` config;
   * bundle and empty config) ahead of need; those no push takes are cancelled with dropUploadsAhead.
   */
  #openUploadsAhead(ref: ImageReference): RepoRef {
    const repo = { registry: ref.registry, repository: ref.repository };
    this.#registry.client.openUploadsAhead(repo, (this.legacy ? 2 : 0) + (this.bundle ? 2 : 0));
    return repo;
  }

  async #lookUp(ref: ImageReference, quiet = false): Promise<SignPlan> {
    if (!quiet) this.#status = { state: 'working', message: `Looking up ${formatReference(ref)}…`, done: 0, total: 0 };
    const plan = await planSigning(this.#registry.client, ref, manifestReference(ref));
    this.#plan = plan;
    this.#planned = ref;
    return plan;
  }

  /** Resolves the reference and shows what will be signed. */
  async check(): Promise<boolean> {
    this.#result = null;
    this.#link = '';
    this.#signedBefore = null;
    this.#noneBefore = '';
    try {
      const ref = this.#reference();
      this.#credentials(ref);
      await this.#lookUp(ref);
      this.#status = { state: 'idle' };
      // The repository's tags, to pick another one; a registry may refuse listing, which is fine.
      this.#tags = null;
      this.#registry.client.listTags(ref).then(
        (tags) => {
          if (this.planned === ref) this.#tags = tags.filter((t) => !/^sha256-[0-9a-f]{64}(\.\w+)?$/.test(t));
        },
        () => undefined,
      );
      return true;
    } catch (e) {
      this.#plan = null;
      this.#status = { state: 'error', ...describeError(e) };
      return false;
    }
  }

  /** True when the chosen key is a hardware key whose token PIN the person must type. */
  get needsPin(): boolean {
    return this.mode === 'page' && this.#keys.hardware.needsPin(this.keyId);
  }

  /**
   * Signs what the reference resolves to now, in the chosen formats. Unless `again` (the answer
   * to "sign again?"), first reads the signatures already there and stops to ask when the chosen
   * key made some.
   */
  async sign(again = false): Promise<void> {
    this.#result = null;
    this.#link = '';
    this.#signedBefore = null;
    this.#consentFor = null;
    if (this.mode === 'identity') return this.#signWithIdentity();
    let repo: RepoRef | null = null;
    let lockAhead: TagLockAhead | undefined;
    try {
      const ref = this.#reference();
      const annotations = parseAnnotations(this.annotationsText);
      if (this.needsPin && !this.pin) {
        throw new Pkcs11Error(
          'PKCS11_PIN_REQUIRED',
          'Signing with this hardware key needs the token PIN: type it in "Token PIN".',
          401,
        );
      }
      const signer = this.#keys.signer(this.keyId, { pin: this.pin });
      if (this.services?.tlog === 'config' && !this.services.consented(fingerprint(signer.spki).hex)) {
        this.#consentFor = fingerprint(signer.spki).hex;
        this.#status = { state: 'idle' };
        return;
      }
      this.#credentials(ref);
      const known = this.#planOf(ref);
      const planning = known ? Promise.resolve(known) : this.#lookUp(ref);
      // A digest typed (or a plan made): "signed before?" reads the signatures while the plan is read.
      const digest = known?.root.digest ?? ref.digest;
      const early = !again && digest ? this.#alreadySigned(ref, digest, planning, signer.spki) : null;
      // The uploads of one image's signatures (payload and .sig config; bundle and empty config)
      // open while the image is read (asked after those reads, which come first on the page's six
      // connections): a round trip less in a row. Those not taken are cancelled below.
      repo = this.#openUploadsAhead(ref);
      // A key that signs at once, with nothing to log: the image's tag locks are taken now, beside
      // these reads, so its writes find them held (given back if it was signed before, or unused).
      if (digest && this.mode === 'page' && !this.services?.inUse && this.#keys.signsAtOnce(this.keyId)) {
        const formats = { legacy: this.legacy, bundle: this.bundle };
        lockAhead = this.#lock?.ahead?.(signingLockKeys(this.#registry.client, repo, [digest], formats));
      }
      const plan = await planning;
      const before = again ? false : await (early ?? this.#alreadySigned(ref, plan.root.digest, planning, signer.spki));
      if (before) return;
      await this.#push(ref, plan, annotations, signer);
      this.#keys.markUsed(this.keyId);
    } catch (e) {
      this.#status = { state: 'error', ...describeError(e) };
    } finally {
      // The PIN served this one signing run; a next run asks for it again.
      this.pin = '';
      lockAhead?.done();
      if (repo) void this.#registry.client.dropUploadsAhead(repo);
    }
  }

  /** The login of "Sign with your identity" in progress, to cancel. */
  #login: AbortController | null = null;

  /** True while a keyless login waits for its window. */
  get loggingIn(): boolean {
    return this.#loggingIn;
  }
  #loggingIn = $state(false);

  /** "Cancel login": ends the login in progress; nothing is signed. */
  cancelLogin(): void {
    this.#login?.abort();
  }

  /**
   * "Sign with your identity": asks once per issuer whether the identity may become public, opens
   * the login window in this click, logs in, gets a certificate from Fulcio for a fresh key, signs
   * (logged and timestamped, as keyless signing needs) and forgets the key and the token.
   */
  async #signWithIdentity(): Promise<void> {
    const offer = this.services?.identityOffer;
    let repo: RepoRef | null = null;
    try {
      if (!this.services || !offer || 'none' in offer)
        throw new KeylessError(
          'KEYLESS_UNSUPPORTED',
          `Signing with your identity needs a signing config with Fulcio, an OIDC issuer, a Rekor log and (with Rekor v2) a timestamp authority, and this one has none to use: ${offer && 'none' in offer ? offer.none : 'no config'}.`,
        );
      const consent = `${IDENTITY_CONSENT}${offer.oidc.url}`;
      if (!this.services.consented(consent)) {
        this.#consentFor = consent;
        this.#status = { state: 'idle' };
        return;
      }
      // Opened before anything is awaited: a window opened later is not the click's, and is blocked.
      const popup = openLoginWindow();
      const ref = this.#reference();
      const annotations = parseAnnotations(this.annotationsText);
      this.#credentials(ref);
      const abort = new AbortController();
      this.#login = abort;
      this.#loggingIn = true;
      this.#status = {
        state: 'working',
        message: `Log in at ${serviceHost(offer.oidc.url)} in the window that opened…`,
        done: 0,
        total: 0,
      };
      // While the person logs in: the image is looked up (what the reference resolves to at the
      // click, as with a key), the trust root read and the keyless code loaded. Each is awaited
      // below, where its failure is the one shown.
      const known = this.#planOf(ref);
      const planning = known ? Promise.resolve(known) : this.#lookUp(ref, true);
      const servicesReady = this.services.services(true);
      const keylessCode = import('../../../../shared/ops/keyless.ts');
      for (const p of [planning, servicesReady, keylessCode]) p.catch(() => undefined);
      let login: Awaited<ReturnType<typeof logIn>> | null = await logIn({
        popup,
        issuer: offer.oidc.url,
        clientId: KEYLESS_CLIENT_ID,
        fetch: (url, init) => fetch(url, init),
        via: (url) => relayedServiceUrl(location.origin, url),
        signal: abort.signal,
      }).finally(() => (this.#loggingIn = false));
      this.#status = { state: 'working', message: 'Getting a certificate from Fulcio…', done: 0, total: 0 };
      // The signatures' blob uploads open while Fulcio and then the log answer (cancelled if unused).
      repo = this.#openUploadsAhead(ref);
      const services = (await servicesReady)!;
      const { keylessSigner } = await keylessCode;
      const signer = await keylessSigner({
        fetch: (url, init) => services.fetch(url, init ?? {}),
        fulcioUrl: offer.fulcio.url,
        idToken: login.idToken,
        claims: login.claims,
        root: services.root,
      });
      // The token served its one request: nothing keeps it.
      login = null;
      try {
        await this.#push(ref, await planning, annotations, signer, services);
      } finally {
        signer.forget();
      }
    } catch (e) {
      this.#status = { state: 'error', ...describeError(e) };
    } finally {
      this.#login = null;
      if (repo) void this.#registry.client.dropUploadsAhead(repo);
    }
  }

  /**
   * True (and the question set) when the image `digest` already carries signatures by `spki`;
   * `planning` is the plan being read, whose manifest is not read again. Never rejects: a failure
   * to read them does not stop signing (the writer reads the tags again anyway).
   */
  async #alreadySigned(
    ref: ImageReference,
    digest: string,
    planning: Promise<SignPlan>,
    spki: Uint8Array,
  ): Promise<boolean> {
    const checked = `${digest} ${fingerprint(spki).hex}`;
    if (this.#noneBefore === checked) return false;
    this.#status = { state: 'working', message: 'Checking the signatures already there…', done: 0, total: 0 };
    const image = formatReference(pinned(ref, digest));
    let before: SignedBefore;
    try {
      before = await signedBefore(this.#registry.client, image, spki, { top: planning.then((p) => p.manifest) });
    } catch {
      return false;
    }
    if (before.byKey === 0) {
      this.#noneBefore = checked;
      return false;
    }
    this.#signedBefore = before;
    this.#beforeLink = verificationLink(location.origin, { image, spki });
    this.#status = { state: 'idle' };
    return true;
  }

  /** Signs and pushes a plan in the chosen formats, then shows the result and its verification link. */
  async #push(
    ref: ImageReference,
    plan: SignPlan,
    annotations: Record<string, string>,
    signer: Signer,
    keylessServices?: SigningServices,
  ): Promise<void> {
    const total = plan.targets.length;
    this.#status = { state: 'working', message: 'Signing…', done: 0, total };
    // The external signer's run pushes signatures made elsewhere: no log or timestamp (the consent is asked on Sign).
    const services = keylessServices ?? (this.mode === 'page' ? await this.services?.services() : undefined);
    const cert = signer.certificate;
    const result = await signImage({
      client: this.#registry.client,
      signer,
      plan,
      dockerReference: this.dockerReference,
      annotations,
      formats: { legacy: this.legacy, bundle: this.bundle },
      ...(this.#lock ? { lock: this.#lock } : {}),
      ...(services ? { services } : {}),
      onProgress: (done, n, message) => (this.#status = { state: 'working', message, done, total: n }),
    });
    this.#result = result;
    this.#noneBefore = '';
    // The bundle is logged to either log; the legacy layer only to a Rekor v1 log (its SET).
    const logged = !!services?.rekor && (this.bundle || (this.legacy && services.rekor.majorApiVersion === 1));
    this.#link = verificationLink(location.origin, {
      image: formatReference(pinned(ref, result.digest)),
      // Keyless: the identity and issuer the certificate names instead of a key.
      ...(cert ? {} : { spki: signer.spki }),
      ...(Object.keys(annotations).length ? { annotations } : {}),
      // Logged or timestamped: the link checks that with the same trust root (and requires the log).
      ...(services && this.services
        ? {
            sigstore: {
              policy: cert ? { certificateIdentity: cert.identity, certificateOidcIssuer: cert.issuer } : {},
              trustedRoot: this.services.trustRoot,
              ...(logged ? { tlog: 'require' as const } : {}),
            },
          }
        : {}),
    });
    const what = total > 1 ? `the index and its ${total - 1} platform manifests` : 'the image';
    const formats = [this.legacy && 'legacy .sig', this.bundle && 'Sigstore bundle'].filter(Boolean).join(' and ');
    const witnessed = [
      logged && `logged in ${services!.rekor!.url}`,
      services?.tsa && `timestamped by ${serviceHost(services.tsa.url)}`,
    ].filter(Boolean);
    this.#status = {
      state: 'signed',
      message: `Signed ${result.digest} (${what}, ${formats}) ${cert ? `as ${cert.identity} (certificate from Fulcio, OIDC issuer ${cert.issuer}; the key made for it is forgotten)` : `with the key whose fingerprint starts sha256:${fingerprint(signer.spki).hex.slice(0, 16)}`}${witnessed.length ? `; ${witnessed.join(', ')}, each answer verified against the trust root` : ''}.`,
    };
  }

  /**
   * The external signer's public key, ready to check signatures with.
   * @throws KeyError KEY_NOT_FOUND when none is chosen; the parsePublicKey codes for a pasted one.
   */
  async #externalKey(): Promise<{ key: PreparedKey; name: string }> {
    if (this.externalKeyId === PASTED_KEY) {
      if (!this.externalPem.trim()) {
        throw new KeyError(
          'KEY_NOT_FOUND',
          'Paste the public key of the external signer (cosign.pub), or choose its file.',
        );
      }
      return { key: await prepareKey(parsePublicKey(this.externalPem).spki), name: 'the public key given here' };
    }
    const view = this.#keys.all.find((k) => k.id === this.externalKeyId);
    if (!view) throw new KeyError('KEY_NOT_FOUND', 'Choose the public key of the external signer.');
    return { key: await prepareKey(view.spki), name: view.name };
  }

  /** What decides the bytes, from the fields as they are now. */
  #signingInput(plan: SignPlan, annotations: Record<string, string>): SigningInput {
    return {
      plan,
      dockerReference: this.dockerReference,
      annotations,
      formats: { legacy: this.legacy, bundle: this.bundle },
    };
  }

  /**
   * External signer, step 1: resolves the reference and lists the exact bytes to sign elsewhere,
   * with their SHA-256, downloads and the openssl lines.
   */
  async prepareExternal(): Promise<void> {
    this.#result = null;
    this.#link = '';
    this.external.clear();
    try {
      const ref = this.#reference();
      const annotations = parseAnnotations(this.annotationsText);
      const { key, name } = await this.#externalKey();
      this.#credentials(ref);
      const plan = await this.#lookUp(ref);
      const items = listBytesToSign(this.#signingInput(plan, annotations));
      this.external.show(
        items,
        key.algorithm,
        { ref, plan, key, keyName: name },
        `${formatReference(ref)} (${plan.root.digest})`,
      );
      this.#status = { state: 'idle' };
    } catch (e) {
      this.#status = { state: 'error', ...describeError(e) };
    }
  }

  /**
   * External signer, step 2: once every signature handed back checks, pushes them as the normal
   * flow would. Nothing is pushed when the image, identity, annotations or formats changed since
   * the bytes were prepared so that a signature would be missing.
   */
  async pushExternal(): Promise<void> {
    this.#result = null;
    this.#link = '';
    try {
      const prepared = this.external.preparedFor;
      if (!prepared) throw new SignatureError('PKCS11_EXTERNAL_SIGNATURE_INVALID', 'Prepare the bytes to sign first.');
      const ref = this.#reference();
      if (formatReference(ref) !== formatReference(prepared.ref)) {
        throw new SignatureError(
          'PKCS11_EXTERNAL_SIGNATURE_INVALID',
          `The image reference changed since the bytes were prepared for ${formatReference(prepared.ref)}: press "Prepare bytes to sign" again.`,
        );
      }
      const annotations = parseAnnotations(this.annotationsText);
      const signatures = this.external.prepared();
      const missing = missingSignatures(this.#signingInput(prepared.plan, annotations), signatures);
      if (missing.length > 0) {
        throw new SignatureError(
          'PKCS11_EXTERNAL_SIGNATURE_INVALID',
          `${missing.length} signature${missing.length > 1 ? 's are' : ' is'} missing (the first: ${missing[0]!.description}). If the identity, annotations or formats changed since preparing, press "Prepare bytes to sign" again. Nothing was pushed.`,
        );
      }
      this.#credentials(ref);
      await this.#push(
        ref,
        prepared.plan,
        annotations,
        preparedSigner(prepared.key.algorithm, prepared.key.spki, signatures),
      );
    } catch (e) {
      this.#status = { state: 'error', ...describeError(e) };
    }
  }

  /** Platform names of the plan, for display. */
  get platforms(): string[] {
    return (this.plan?.targets ?? []).flatMap((t) => (t.platform ? [platformName(t.platform)] : []));
  }
}
