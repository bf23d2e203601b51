/**
 * The sign page's Sigstore services: which signing config ("Signing config": the public-good one
 * shipped with the page, or one loaded with "Config file" and kept in this browser's
 * localStorage under its sha256), whether to log ("Transparency log": none, or the config's Rekor
 * log, v2 or v1, chosen as cosign 3.1 chooses) and timestamp ("Timestamp authority": none, or the config's TSA), the trust root every
 * answer is checked with, and the consent asked once per key before its first log upload
 * (remembered per key fingerprint in localStorage). The services are reached through the relay
 * (`/relay/<host>/<path>`); shared/ops/sign-services.ts does the work.
 */
import { toHex } from '../../../../shared/encoding/base64.ts';
import { sha256Bytes } from '../../../../shared/crypto/digest.ts';
import { SigningServiceError } from '../../../../shared/errors.ts';
import type { SigningServices } from '../../../../shared/ops/sign-services.ts';
import {
  parseSigningConfig,
  selectService,
  type SigningConfig,
  type SigningService,
} from '../../../../shared/sigstore/signing-config.ts';
import { offerOf, relayedFetch, type Offer } from './service-offers.ts';
import { PUBLIC_GOOD_SIGNING_CONFIG } from '../../../../shared/sigstore/shipped-signing-config.ts';
import type { TrustRoots } from '../../app/trust-roots.svelte.ts';

const CONFIGS_KEY = 'cosign-web.signing-configs';
const CONSENT_KEY = 'cosign-web.tlog-consent';
const CHOICE_KEY = 'cosign-web.sign-services';
/** Largest signing config accepted (public good is 1 KiB). */
const MAX_CONFIG_BYTES = 256 * 1024;
/** The API versions this page speaks: Rekor v1 (with its SET) and v2, the highest valid one chosen; RFC 3161 TSAs. */
const REKOR_VERSIONS = [1, 2];
const TSA_VERSIONS = [1];

interface StoredConfig {
  id: string;
  name: string;
  json: string;
}

function readList<T>(key: string): T[] {
  try {
    const v = JSON.parse(localStorage.getItem(key) ?? '[]') as unknown;
    return Array.isArray(v) ? (v as T[]) : [];
  } catch {
    return [];
  }
}

export class SigningServicesChoice {
  configId = $state('public-good');
  tlog = $state<'none' | 'config'>('none');
  tsa = $state<'none' | 'config'>('none');
  trustRoot = $state('public-good');
  configError = $state<{ code: string; message: string } | null>(null);
  #loaded = $state.raw<StoredConfig[]>(readList<StoredConfig>(CONFIGS_KEY));
  #consented = $state.raw<string[]>(readList<string>(CONSENT_KEY));
  readonly #roots: TrustRoots;
  readonly #origin: string;

  constructor(roots: TrustRoots, origin: string) {
    this.#roots = roots;
    this.#origin = origin;
    try {
      const saved = JSON.parse(localStorage.getItem(CHOICE_KEY) ?? '{}') as Record<string, unknown>;
      if (typeof saved.configId === 'string' && this.#json(saved.configId)) this.configId = saved.configId;
      if (saved.tlog === 'config') this.tlog = 'config';
      if (saved.tsa === 'config') this.tsa = 'config';
      if (typeof saved.trustRoot === 'string') this.trustRoot = saved.trustRoot;
    } catch {
      localStorage.removeItem(CHOICE_KEY);
    }
  }

  save(): void {
    const { configId, tlog, tsa, trustRoot } = this;
    localStorage.setItem(CHOICE_KEY, JSON.stringify({ configId, tlog, tsa, trustRoot }));
  }

  /** The configs to choose from: the shipped one, then those loaded here (newest first). */
  get choices(): { id: string; name: string }[] {
    return [{ id: 'public-good', name: PUBLIC_GOOD_SIGNING_CONFIG.name }, ...this.#loaded];
  }

  #json(id: string): string | null {
    return id === 'public-good'
      ? PUBLIC_GOOD_SIGNING_CONFIG.json
      : (this.#loaded.find((c) => c.id === id)?.json ?? null);
  }

  /** The chosen config, read; null (with configError) when it cannot be. */
  readonly config = $derived.by((): SigningConfig | null => {
    const json = this.#json(this.configId);
    try {
      return json ? parseSigningConfig(json) : null;
    } catch {
      return null;
    }
  });

  /** The config's Rekor log (v2 before v1, as cosign 3.1 selects), or why there is none. */
  get rekorOffer(): Offer {
    const c = this.config;
    return c ? offerOf(c.rekorTlogUrls, REKOR_VERSIONS, c.rekorTlogConfig, 'transparency log') : { none: 'no config' };
  }

  /** The config's timestamp authority, or why there is none. */
  get tsaOffer(): Offer {
    const c = this.config;
    return c ? offerOf(c.tsaUrls, TSA_VERSIONS, c.tsaConfig, 'timestamp authority') : { none: 'no config' };
  }

  /**
   * The config's Fulcio and OIDC issuer for "Sign with your identity", or why it offers none. Keyless
   * signing also needs the config's Rekor log and, with a Rekor v2 log, its timestamp authority
   * (cosign 3.1 requires a timestamp with Rekor v2; a v1 log's SET gives the verified time), so their
   * absence is a reason too.
   */
  get identityOffer(): { fulcio: SigningService; oidc: SigningService } | { none: string } {
    const c = this.config;
    if (!c) return { none: 'no signing config is chosen' };
    // eslint-disable-next-line svelte/prefer-svelte-reactivity -- a moment to select at, not state
    const now = new Date();
    try {
      const fulcio = selectService(c.caUrls, [1], now, 'certificate authority (Fulcio)');
      const oidc = selectService(c.oidcUrls, [1], now, 'OIDC issuer');
      const rekor = this.rekorOffer;
      if ('none' in rekor) return { none: rekor.none };
      if (rekor.service.majorApiVersion !== 1 && 'none' in this.tsaOffer) return { none: this.tsaOffer.none };
      return { fulcio, oidc };
    } catch (e) {
      return { none: (e as Error).message };
    }
  }

  /**
   * Loads a signing config file, checks it whole and keeps it under its sha256, then selects it.
   * A malformed one sets configError (SIGNING_CONFIG_INVALID) and changes nothing.
   */
  async load(file: File): Promise<void> {
    this.configError = null;
    try {
      if (file.size > MAX_CONFIG_BYTES)
        throw new SigningServiceError(
          'SIGNING_CONFIG_INVALID',
          'The signing config is not valid: it is larger than 256 KiB.',
        );
      const bytes = new Uint8Array(await file.arrayBuffer());
      parseSigningConfig(bytes);
      const id = `sha256:${toHex(sha256Bytes(bytes))}`;
      const json = new TextDecoder().decode(bytes);
      const name = file.name.replace(/\.json$/i, '') || id.slice(0, 19);
      this.#loaded = [{ id, name, json }, ...this.#loaded.filter((c) => c.id !== id)];
      localStorage.setItem(CONFIGS_KEY, JSON.stringify(this.#loaded));
      this.configId = id;
      this.save();
    } catch (e) {
      const { reasonOf } = await import('../../../../shared/errors.ts');
      this.configError = reasonOf(e);
    }
  }

  /** True when anything is to be uploaded. */
  get inUse(): boolean {
    return this.tlog === 'config' || this.tsa === 'config';
  }

  /** True when the key (by its fingerprint, hex) was consented to be logged publicly. */
  consented(fingerprint: string): boolean {
    return this.#consented.includes(fingerprint);
  }

  /** Records that this key may be logged from now on (asked once per key). */
  consent(fingerprint: string): void {
    if (this.consented(fingerprint)) return;
    this.#consented = [...this.#consented, fingerprint];
    localStorage.setItem(CONSENT_KEY, JSON.stringify(this.#consented));
  }

  /**
   * The services the signing uses, with the trust root their answers are checked with.
   * @throws SigningServiceError SIGNING_CONFIG_NO_SERVICE when an option is chosen the config cannot offer;
   *   VerificationError when the trust root cannot be read.
   */
  async services(keyless = false): Promise<SigningServices | undefined> {
    if (!this.inUse && !keyless) return undefined;
    const pick = (offer: Offer, what: string): SigningService => {
      if ('service' in offer) return offer.service;
      throw new SigningServiceError('SIGNING_CONFIG_NO_SERVICE', `No ${what} to use: ${offer.none}.`);
    };
    // Keyless: always the config's log, and its timestamp authority when it has one (what makes a
    // short-lived certificate checkable: a v1 log's SET, or a timestamp, which Rekor v2 needs).
    const rekor = keyless || this.tlog === 'config' ? pick(this.rekorOffer, 'transparency log') : undefined;
    const tsaWanted = keyless ? rekor?.majorApiVersion !== 1 || 'service' in this.tsaOffer : this.tsa === 'config';
    const tsa = tsaWanted ? pick(this.tsaOffer, 'timestamp authority') : undefined;
    const { buildTrust } = await import('../../../../shared/ops/verify-sigstore.ts');
    const id = this.trustRoot;
    const held = id === 'public-good' || id === 'staging' ? id : await this.#roots.get(id);
    if (!held)
      throw new SigningServiceError(
        'SIGNING_CONFIG_NO_SERVICE',
        'The trust root chosen is not held in this browser: choose its file with "Trusted root file".',
      );
    const { root } = buildTrust({ root: held });
    return {
      fetch: (url, init) => relayedFetch(this.#origin, url, init),
      root,
      ...(rekor ? { rekor } : {}),
      ...(tsa ? { tsa } : {}),
    };
  }
}
