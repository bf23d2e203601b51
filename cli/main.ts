/**
 * cosign-web's command line. One command for now, speaking the Sigstore client conformance
 * protocol (https://github.com/sigstore/sigstore-conformance/blob/main/docs/cli_protocol.md):
 *
 *   cosign-web verify-bundle --bundle F (--certificate-identity I --certificate-oidc-issuer U | --key PEM)
 *                            [--trusted-root F] FILE_OR_SHA256_DIGEST
 *
 * Exit 0 only when verified; otherwise the error code and a sentence on stderr, exit 1
 * (2 for a command line that cannot be understood).
 */
import { reasonOf } from '../shared/errors.ts';
import { verifyBundleCommand, VERIFY_BUNDLE_USAGE, UsageError } from './verify-bundle.ts';

const USAGE = `Usage:\n  ${VERIFY_BUNDLE_USAGE}\n`;

/** Where the command writes: process.stdout / process.stderr, or a test's sink. */
interface Output {
  write(text: string): unknown;
}

/** Runs the command line; returns the exit code. */
export async function main(
  argv: string[],
  out: Output = process.stdout,
  err: Output = process.stderr,
): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    (command === undefined ? err : out).write(USAGE);
    return command === undefined ? 2 : 0;
  }
  if (command !== 'verify-bundle') {
    err.write(`cosign-web: unknown command ${JSON.stringify(command)}.\n${USAGE}`);
    return 2;
  }
  try {
    const report = await verifyBundleCommand(rest);
    out.write(report);
    return 0;
  } catch (e) {
    if (e instanceof UsageError) {
      err.write(`cosign-web verify-bundle: ${e.message}\n${USAGE}`);
      return 2;
    }
    const { code, message } = reasonOf(e);
    err.write(`Not verified: ${message}\n${code}\n`);
    return 1;
  }
}
