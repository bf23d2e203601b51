/**
 * Before signing again: the signatures an image already carries, and how many of them a given key
 * made (a legacy `.sig` layer or a Sigstore bundle referrer that verifies with it), with the
 * latest date a bundle referrer records (`org.opencontainers.image.created`; legacy layers carry
 * none). Read with the Tree's reader (shared/ops/tree.ts), on the image's own manifest only and
 * only its `.sig` and referrers (two lookups, whatever the index holds): the Sign page asks "sign
 * again?" from it instead of stacking duplicates silently (issue #13).
 */
import type { Manifest, RegistryClient } from '../registry/client.ts';
import { buildTree, nodeItems } from './tree.ts';

/** What an image carries already. */
export interface SignedBefore {
  /** Signatures of any key on the image's manifest (legacy layers and bundle referrers). */
  total: number;
  /** Those that verify with the key. */
  byKey: number;
  /** Of byKey: legacy `.sig` layers and bundle referrers. */
  legacy: number;
  bundle: number;
  /** The latest `org.opencontainers.image.created` of this key's bundle referrers, or null. */
  latest: string | null;
}

/**
 * Counts the signatures on `image` (a reference pinned to a digest) and those `spki` made. `top`,
 * the image's manifest or index as the caller reads it (the Sign page's plan, possibly still on
 * its way), is not read again, and the lookups do not wait for it (buildTree's `top`).
 * @throws RegistryError/RelayError when the image cannot be read (failures below it count as none).
 */
export async function signedBefore(
  client: RegistryClient,
  image: string,
  spki: Uint8Array,
  opts: { signal?: AbortSignal; top?: Manifest | Promise<Manifest | undefined> } = {},
): Promise<SignedBefore> {
  const tree = await buildTree(client, { image, key: spki, signaturesOnly: true, ...opts });
  const signatures = nodeItems(tree.root).filter((i) => i.kind === 'signature');
  const mine = signatures.filter((i) => i.verdict.state === 'verified');
  const dates = mine
    .map((i) => i.annotations['org.opencontainers.image.created'])
    .filter((d): d is string => typeof d === 'string' && !Number.isNaN(Date.parse(d)))
    .sort((a, b) => Date.parse(a) - Date.parse(b));
  return {
    total: signatures.length,
    byKey: mine.length,
    legacy: mine.filter((i) => i.source === 'sig').length,
    bundle: mine.filter((i) => i.source === 'referrer').length,
    latest: dates.at(-1) ?? null,
  };
}
