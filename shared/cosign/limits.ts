/**
 * How much of what a registry serves the workflows read at most. A hostile or broken registry
 * can attach any number of signatures and platforms; these bound what a page holds and checks,
 * and every workflow (verify, tree, remove, copy) uses the same numbers so they agree on what an
 * image carries.
 */

/** Largest payload or bundle blob read (cosign's are a few hundred bytes). */
export const MAX_SIGNATURE_BLOB = 1024 * 1024;
/** Most layers of one `.sig`/`.att`/`.sbom` manifest read. */
export const MAX_LAYERS = 1000;
/** Most referrers of one subject read. */
export const MAX_REFERRERS = 256;
/** Most platforms of one index read. */
export const MAX_PLATFORMS = 64;
