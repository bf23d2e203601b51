/**
 * `npm run gc`: garbage collection of the embedded registry's folder (REGISTRY_DATA, default
 * .data/registry) while the server is stopped: removes every blob file that no manifest names
 * (server/registry/gc.ts) and prints what it freed. A running server collects on its own (at start
 * and after each manifest delete, keeping blobs pushed within the last hour), so this refuses to
 * run on a folder a live server holds. Exit status: 0 done, 2 refused or failed.
 */
import { fileURLToPath } from 'node:url';
import { collectGarbage, describeGc, linkNamedBlobs } from './registry/gc.ts';
import { Storage } from './registry/storage.ts';

const dataDir = process.env.REGISTRY_DATA ?? fileURLToPath(new URL('../.data/registry', import.meta.url));
const storage = new Storage(dataDir);
const holder = await storage.holder();
if (holder !== undefined) {
  console.error(
    `The server (pid ${holder}) is serving ${dataDir}: stop it first (it collects on its own after each manifest delete).`,
  );
  process.exit(2);
}
try {
  await storage.open();
  await linkNamedBlobs(storage);
  // Nothing is being pushed while the server is stopped: no grace period.
  console.log(`${describeGc(await collectGarbage(storage, 0))} in ${dataDir}`);
} catch (e) {
  console.error(`gc failed on ${dataDir}: ${(e as Error).message}`);
  process.exit(2);
}
