/**
 * The OCI objects cosign stores signatures in.
 *
 * Legacy (cosign 2.x, skopeo, podman): an OCI image manifest at tag `sha256-<hex>.sig` with one
 * layer per signature (media type simplesigning, annotation `dev.cosignproject.cosign/signature`)
 * and a config whose `rootfs.diff_ids` list the layers, as go-containerregistry writes it.
 *
 * Bundle (cosign 3.x): an OCI 1.1 artifact manifest per signature with `subject` = the image and
 * one layer holding the Sigstore bundle; found by the referrers API or, on registries without it,
 * the referrers tag schema's index at tag `sha256-<hex>`.
 */
import { utf8 } from '../encoding/base64.ts';
import { sha256Digest } from '../crypto/digest.ts';
import { MT, type Descriptor } from '../registry/mediatypes.ts';
import { goJson } from './strict-json.ts';

export const SIGNATURE_ANNOTATION = 'dev.cosignproject.cosign/signature';
export const CERTIFICATE_ANNOTATION = 'dev.sigstore.cosign/certificate';
/** The certificates between a legacy layer's certificate and its root, PEM (cosign writes them; verifiers trust roots, not these). */
export const CHAIN_ANNOTATION = 'dev.sigstore.cosign/chain';
export const BUNDLE_ANNOTATION = 'dev.sigstore.cosign/bundle';
export const EMPTY_CONFIG = utf8('{}');
export const EMPTY_CONFIG_DESCRIPTOR: Descriptor = {
  mediaType: MT.ociEmpty,
  digest: sha256Digest(EMPTY_CONFIG),
  size: 2,
};

/** `sha256-<hex>.sig` for `sha256:<hex>`. */
export function sigTag(digest: string): string {
  return `${digest.replace(':', '-')}.sig`;
}

/** `sha256-<hex>`: the referrers tag schema's tag for `sha256:<hex>`. */
export function referrersTag(digest: string): string {
  return digest.replace(':', '-');
}

/** A descriptor with cosign's (go-containerregistry's) key order: mediaType, size, digest, rest. */
function ordered(d: Descriptor): Record<string, unknown> {
  const { mediaType, size, digest, ...rest } = d;
  return { mediaType, size, digest, ...rest };
}

/** The simplesigning layer descriptor of one legacy signature. */
export function sigLayer(payload: Uint8Array, signatureB64: string): Descriptor {
  return {
    mediaType: MT.cosignSimpleSigning,
    size: payload.length,
    digest: sha256Digest(payload),
    annotations: { [SIGNATURE_ANNOTATION]: signatureB64 },
  };
}

/**
 * The `.sig` manifest and its config for these layers, as cosign writes them (one history entry
 * per layer, zero times, empty os/architecture).
 */
export function buildSigManifest(layers: Descriptor[]): {
  manifest: Uint8Array;
  config: Uint8Array;
  configDescriptor: Descriptor;
} {
  const zero = '0001-01-01T00:00:00Z';
  const config = utf8(
    goJson({
      architecture: '',
      created: zero,
      history: layers.map(() => ({ created: zero })),
      os: '',
      rootfs: { type: 'layers', diff_ids: layers.map((l) => l.digest) },
      config: {},
    }),
  );
  const configDescriptor: Descriptor = { mediaType: MT.ociConfig, size: config.length, digest: sha256Digest(config) };
  const manifest = utf8(
    goJson({
      schemaVersion: 2,
      mediaType: MT.ociManifest,
      config: ordered(configDescriptor),
      layers: layers.map(ordered),
    }),
  );
  return { manifest, config, configDescriptor };
}

/** Two layers are the same signature when payload digest and signature agree. */
export function sameSignatureLayer(a: Descriptor, b: Descriptor): boolean {
  return a.digest === b.digest && a.annotations?.[SIGNATURE_ANNOTATION] === b.annotations?.[SIGNATURE_ANNOTATION];
}

/**
 * The referrer manifest for a bundle, key for key as cosign 3.1 pushes it.
 * @param created RFC 3339 time, seconds precision (`2026-11-24T22:38:27Z`).
 */
export function buildBundleReferrer(
  subject: Descriptor,
  bundle: Descriptor,
  predicateType: string,
  created: string,
): Uint8Array {
  return utf8(
    goJson({
      schemaVersion: 2,
      mediaType: MT.ociManifest,
      config: { ...ordered(EMPTY_CONFIG_DESCRIPTOR), artifactType: MT.sigstoreBundle },
      layers: [ordered({ mediaType: MT.sigstoreBundle, size: bundle.size, digest: bundle.digest })],
      annotations: {
        'dev.sigstore.bundle.content': 'dsse-envelope',
        'dev.sigstore.bundle.predicateType': predicateType,
        'org.opencontainers.image.created': created,
      },
      subject: ordered({ mediaType: subject.mediaType, size: subject.size, digest: subject.digest }),
      artifactType: MT.sigstoreBundle,
    }),
  );
}

/**
 * The referrers tag schema's index with `entry` added (kept once); the existing entries are kept
 * as they are, whatever their artifactType says.
 */
export function addToReferrersIndex(existing: Descriptor[], entry: Descriptor): { index: Uint8Array; added: boolean } {
  const added = !existing.some((d) => d.digest === entry.digest);
  return { index: buildReferrersIndex(added ? [...existing, entry] : existing), added };
}

/** An OCI index listing exactly these referrer manifests. */
export function buildReferrersIndex(manifests: Descriptor[]): Uint8Array {
  return utf8(goJson({ schemaVersion: 2, mediaType: MT.ociIndex, manifests: manifests.map(ordered) }));
}
