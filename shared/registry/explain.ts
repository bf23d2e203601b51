/**
 * What a media type (or artifact type) means, in one short sentence a person can read: the OCI
 * and Docker manifests, indexes and configs, image layers, and what signing tools attach to an
 * image (cosign's simple-signing payload, Sigstore bundles, DSSE envelopes, in-toto statements,
 * SBOMs). Used by Inspect and Tree next to every media type they show.
 * https://github.com/opencontainers/image-spec/blob/main/media-types.md
 * https://github.com/sigstore/cosign/blob/main/specs/SIGNATURE_SPEC.md
 */
import { MT } from './mediatypes.ts';

/** What a media type is for. `known` is false when the sentence is a guess from its shape. */
export interface MediaTypeExplanation {
  mediaType: string;
  /** A few words: "OCI image manifest". */
  title: string;
  /** One sentence. */
  sentence: string;
  /** manifest, index, config, layer, signature, attestation, sbom, empty, other. */
  category: 'manifest' | 'index' | 'config' | 'layer' | 'signature' | 'attestation' | 'sbom' | 'empty' | 'other';
  known: boolean;
}

type Entry = Omit<MediaTypeExplanation, 'mediaType' | 'known'>;

const EXACT: Record<string, Entry> = {
  [MT.ociManifest]: {
    title: 'OCI image manifest',
    sentence:
      'One image (or artifact) for one platform: it names a config blob and an ordered list of layers by digest.',
    category: 'manifest',
  },
  [MT.ociIndex]: {
    title: 'OCI image index',
    sentence:
      'A list of manifests, usually one image per platform (a multi-platform image); also the form of a referrers list.',
    category: 'index',
  },
  [MT.dockerManifest]: {
    title: 'Docker image manifest (schema 2)',
    sentence: "Docker's format for one image for one platform: a config blob and its layers, as OCI's manifest.",
    category: 'manifest',
  },
  [MT.dockerList]: {
    title: 'Docker manifest list',
    sentence: "Docker's multi-platform image: one manifest per platform, as OCI's index.",
    category: 'index',
  },
  [MT.ociConfig]: {
    title: 'OCI image config',
    sentence:
      "The image's settings (platform, environment, entrypoint, labels) and the digests of its uncompressed layers (rootfs.diff_ids).",
    category: 'config',
  },
  [MT.dockerConfig]: {
    title: 'Docker image config',
    sentence: "Docker's image settings and layer history, the same content as the OCI image config.",
    category: 'config',
  },
  [MT.ociEmpty]: {
    title: 'Empty descriptor',
    sentence: 'The two-byte JSON "{}": a placeholder config for artifacts that need none (signatures, SBOMs).',
    category: 'empty',
  },
  'application/vnd.oci.image.layer.v1.tar': {
    title: 'OCI layer (tar)',
    sentence: 'A filesystem change set: an uncompressed tar archive unpacked on top of the layers before it.',
    category: 'layer',
  },
  'application/vnd.oci.image.layer.v1.tar+gzip': {
    title: 'OCI layer (tar, gzip)',
    sentence: 'A filesystem change set: a gzip-compressed tar archive unpacked on top of the layers before it.',
    category: 'layer',
  },
  'application/vnd.oci.image.layer.v1.tar+zstd': {
    title: 'OCI layer (tar, zstd)',
    sentence: 'A filesystem change set: a zstd-compressed tar archive unpacked on top of the layers before it.',
    category: 'layer',
  },
  'application/vnd.docker.image.rootfs.diff.tar.gzip': {
    title: 'Docker layer (tar, gzip)',
    sentence: "Docker's gzip-compressed filesystem layer, unpacked on top of the layers before it.",
    category: 'layer',
  },
  'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip': {
    title: 'Docker foreign layer',
    sentence: 'A layer the registry may not hold (Windows base layers): it is fetched from the URLs it names.',
    category: 'layer',
  },
  [MT.cosignSimpleSigning]: {
    title: 'cosign signature payload',
    sentence:
      'A legacy cosign signature: the signed JSON naming the image digest and reference; the signature itself is the layer annotation dev.cosignproject.cosign/signature.',
    category: 'signature',
  },
  'application/vnd.dev.sigstore.bundle.v0.3+json': {
    title: 'Sigstore bundle v0.3',
    sentence:
      'A Sigstore bundle (cosign 3): a DSSE envelope with its signature and the key hint or certificate to check it with.',
    category: 'signature',
  },
  'application/vnd.dev.sigstore.bundle+json;version=0.3': {
    title: 'Sigstore bundle v0.3',
    sentence: 'A Sigstore bundle: a signed envelope with the key hint or certificate to check it with.',
    category: 'signature',
  },
  'application/vnd.dev.sigstore.bundle+json;version=0.2': {
    title: 'Sigstore bundle v0.2',
    sentence: 'An older Sigstore bundle: a signed envelope with the certificate or key hint to check it with.',
    category: 'signature',
  },
  'application/vnd.dsse.envelope.v1+json': {
    title: 'DSSE envelope',
    sentence:
      'A signed envelope (Dead Simple Signing Envelope): cosign 2 stores attestations this way in the .att tag, an in-toto statement inside.',
    category: 'attestation',
  },
  'application/vnd.in-toto+json': {
    title: 'in-toto statement',
    sentence:
      'A claim about an artifact (provenance, SBOM, vulnerability scan, or a cosign signature): subject digests, a predicate type and the predicate.',
    category: 'attestation',
  },
  'application/spdx+json': {
    title: 'SPDX SBOM (JSON)',
    sentence:
      'A software bill of materials in SPDX JSON: the packages and files the image contains, and their licences.',
    category: 'sbom',
  },
  'text/spdx': {
    title: 'SPDX SBOM (tag-value)',
    sentence: 'A software bill of materials in SPDX tag-value text.',
    category: 'sbom',
  },
  'text/spdx+json': {
    title: 'SPDX SBOM (JSON)',
    sentence: 'A software bill of materials in SPDX JSON, as `cosign attach sbom` stores it in the .sbom tag.',
    category: 'sbom',
  },
  'application/vnd.cyclonedx+json': {
    title: 'CycloneDX SBOM (JSON)',
    sentence: 'A software bill of materials in CycloneDX JSON: components, versions and dependencies.',
    category: 'sbom',
  },
  'application/vnd.cyclonedx+xml': {
    title: 'CycloneDX SBOM (XML)',
    sentence: 'A software bill of materials in CycloneDX XML.',
    category: 'sbom',
  },
  'application/vnd.syft+json': {
    title: 'Syft SBOM',
    sentence: "A software bill of materials in Syft's own JSON format.",
    category: 'sbom',
  },
  'application/vnd.oci.artifact.manifest.v1+json': {
    title: 'OCI artifact manifest (withdrawn)',
    sentence:
      'A draft OCI 1.1 artifact manifest, later withdrawn: artifacts now use the image manifest with artifactType.',
    category: 'manifest',
  },
};

/** Predicate types worth a name. */
const PREDICATES: Record<string, string> = {
  'https://sigstore.dev/cosign/sign/v1': 'a cosign image signature',
  'https://slsa.dev/provenance/v1': 'SLSA provenance v1',
  'https://slsa.dev/provenance/v0.2': 'SLSA provenance v0.2',
  'https://spdx.dev/Document': 'an SPDX SBOM',
  'https://cyclonedx.org/bom': 'a CycloneDX SBOM',
  'https://cosign.sigstore.dev/attestation/v1': 'a custom cosign attestation',
  'https://cosign.sigstore.dev/attestation/vuln/v1': 'a vulnerability scan',
  'https://in-toto.io/attestation/vulns/v0.1': 'a vulnerability scan',
};

/** Lower-cased type and subtype, parameters dropped except a version (Sigstore bundles use one). */
function normalise(mt: string): string {
  const [head, ...params] = mt.split(';').map((s) => s.trim());
  const version = params.find((p) => /^version=/i.test(p));
  const base = (head ?? '').toLowerCase();
  return version ? `${base};${version.toLowerCase()}` : base;
}

/**
 * The explanation of a media type or artifact type; never throws. An unknown type gets a
 * sentence from its shape (`+json`, `+gzip`, vendor tree) with `known: false`; anything that is
 * not a string (a registry's descriptor without a `mediaType`) is explained as no media type.
 */
export function explainMediaType(given: unknown): MediaTypeExplanation {
  const mediaType = typeof given === 'string' ? given : '';
  const key = normalise(mediaType);
  // Own keys only: a type named "constructor" or "__proto__" is not in the table.
  const own = (k: string): Entry | undefined => (Object.hasOwn(EXACT, k) ? EXACT[k] : undefined);
  const exact = own(key) ?? own(key.split(';')[0]!);
  if (exact) return { mediaType, known: true, ...exact };
  if (key.startsWith('application/vnd.dev.sigstore.bundle')) {
    return {
      mediaType,
      known: true,
      title: 'Sigstore bundle',
      sentence: 'A Sigstore bundle: a signed envelope with the key hint or certificate to check it with.',
      category: 'signature',
    };
  }
  if (key === '') {
    return {
      mediaType,
      known: false,
      title: 'No media type',
      sentence: 'No media type was given: a reader must guess what this is from its content.',
      category: 'other',
    };
  }
  const suffix = /\+([a-z0-9.-]+)$/.exec(key.split(';')[0]!)?.[1];
  const vendor = /^[a-z]+\/vnd\.([a-z0-9-]+)/.exec(key)?.[1];
  const shape =
    suffix === 'json'
      ? 'JSON'
      : suffix === 'gzip' || suffix === 'zstd'
        ? `${suffix}-compressed data`
        : suffix
          ? `${suffix} data`
          : 'data';
  return {
    mediaType,
    known: false,
    title: vendor ? `${vendor} artifact` : 'Other content',
    sentence: `Content this page does not know${vendor ? ` (a type of the ${vendor} vendor tree)` : ''}: ${shape}, shown as it is.`,
    category: 'other',
  };
}

/** A short name for an in-toto predicate type ("SLSA provenance v1"), or the type itself. */
export function predicateName(predicateType: string): string {
  return Object.hasOwn(PREDICATES, predicateType) ? PREDICATES[predicateType]! : predicateType;
}
