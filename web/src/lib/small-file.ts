/**
 * Files chosen in a form that must be small (a key, a public key, a signature): refused by size
 * before they are read, so a wrong choice (an image, a video) is never loaded into the tab.
 */
import { KeyError, type CosignWebError } from '../../../shared/errors.ts';

/** 64 KiB: far more than any key, public key or signature file. */
const MAX_SMALL_FILE_BYTES = 64 * 1024;

/**
 * The bytes of a chosen file that should be `what` ("a key file", "a signature").
 * @throws what `refuse` makes of the sentence saying the file is too large.
 */
export async function readSmallFile(
  file: File,
  what: string,
  refuse: (sentence: string) => CosignWebError,
): Promise<Uint8Array> {
  if (file.size > MAX_SMALL_FILE_BYTES)
    throw refuse(`"${file.name}" is ${file.size} bytes: far too large to be ${what}.`);
  return new Uint8Array(await file.arrayBuffer());
}

/**
 * The text of a chosen key file (a private or public key in PEM, `what` says which).
 * @throws KeyError KEY_PEM_INVALID when the file is too large to be one.
 */
export async function readKeyFile(file: File, what: string): Promise<string> {
  const bytes = await readSmallFile(file, what, (sentence) => new KeyError('KEY_PEM_INVALID', sentence));
  return new TextDecoder().decode(bytes);
}
