/**
 * The server's secrets at start-up: the PKCS#11 endpoint's API token and optional token PIN, and
 * the embedded registry's token, each from `<NAME>_FILE` (a file read once, its final newline
 * dropped; the recommended form) or `<NAME>` (PKCS11_API_TOKEN, PKCS11_PIN,
 * EMBEDDED_REGISTRY_TOKEN). Once read, the variables are taken out of
 * the environment, and their bytes wiped from the process's initial environment block, which
 * `delete process.env.X` leaves readable in /proc/<pid>/environ (Linux keeps the strings the
 * process was started with; Node has no call to overwrite them, so this writes zeros over them
 * through /proc/self/mem). Processes that started this one (npm, `npm start`'s wrapper) keep
 * their own copies: only the _FILE forms keep a secret out of every environment.
 */
import { closeSync, openSync, readFileSync, readSync, writeSync } from 'node:fs';

/** A setting that keeps the server from starting; its message says which and why. */
export class SecretsError extends Error {}

export interface Pkcs11Secrets {
  /** '' when neither PKCS11_API_TOKEN nor PKCS11_API_TOKEN_FILE is set. */
  apiToken: string;
  pin?: string;
}

/** The variables that carry a secret's value, to take out of the environment once read. */
export const SECRET_VARIABLES: readonly string[] = ['PKCS11_API_TOKEN', 'PKCS11_PIN', 'EMBEDDED_REGISTRY_TOKEN'];

/**
 * One secret: from `<name>_FILE` (read once, one final `\n` or `\r\n` dropped) or `<name>`.
 * @throws SecretsError when both are set, or the file cannot be read or is empty
 */
export function readSecret(env: Record<string, string | undefined>, name: string): string | undefined {
  const direct = env[name] ?? '';
  const file = env[`${name}_FILE`] ?? '';
  if (file === '') return direct === '' ? undefined : direct;
  if (direct !== '') throw new SecretsError(`${name} and ${name}_FILE are both set: set one of them.`);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    const why = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
    throw new SecretsError(`${name}_FILE names ${file}, which could not be read (${why}).`);
  }
  const value = text.replace(/\r?\n$/, '');
  if (value === '') throw new SecretsError(`${name}_FILE names ${file}, which is empty.`);
  return value;
}

/**
 * Reads the PKCS#11 secrets from the environment and their files.
 * @throws SecretsError for a setting the server cannot start with
 */
export function readPkcs11Secrets(env: Record<string, string | undefined>): Pkcs11Secrets {
  const apiToken = readSecret(env, 'PKCS11_API_TOKEN') ?? '';
  const pin = readSecret(env, 'PKCS11_PIN');
  return { apiToken, ...(pin !== undefined ? { pin } : {}) };
}

/** The start and end of this process's initial environment block (/proc/self/stat fields 50, 51). */
function environmentBlock(): { start: number; end: number } | null {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state), so field n is fields[n - 3].
  const start = Number(fields[47]);
  const end = Number(fields[48]);
  return Number.isSafeInteger(start) && Number.isSafeInteger(end) && start > 0 && end > start ? { start, end } : null;
}

/** True when /proc/self/environ still holds `NAME=` for one of `names`. */
function stillListed(names: readonly string[]): boolean {
  return readFileSync('/proc/self/environ', 'latin1')
    .split('\0')
    .some((entry) => names.some((n) => entry.startsWith(`${n}=`)));
}

/**
 * Takes `names` out of process.env and wipes `NAME=value` from the initial environment block.
 * @returns true when none of them is left in /proc/self/environ (or none was set); false when the
 *   block could not be written (no /proc, or a kernel that refuses writes to /proc/self/mem)
 */
export function scrubEnvironment(names: readonly string[] = SECRET_VARIABLES): boolean {
  for (const n of names) delete process.env[n];
  try {
    if (!stillListed(names)) return true;
    const block = environmentBlock();
    if (block === null) return false;
    const fd = openSync('/proc/self/mem', 'r+');
    try {
      const bytes = Buffer.alloc(block.end - block.start);
      readSync(fd, bytes, 0, bytes.length, block.start);
      for (let at = 0; at < bytes.length;) {
        const nul = bytes.indexOf(0, at);
        const stop = nul < 0 ? bytes.length : nul;
        const entry = bytes.toString('latin1', at, stop);
        if (names.some((n) => entry.startsWith(`${n}=`))) {
          writeSync(fd, Buffer.alloc(stop - at), 0, stop - at, block.start + at);
        }
        at = stop + 1;
      }
    } finally {
      closeSync(fd);
    }
    return !stillListed(names);
  } catch {
    return false;
  }
}
