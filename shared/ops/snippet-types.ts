/**
 * What the policy snippets are (text to copy, and notes where a tool checks otherwise) and the
 * parts the key and keyless snippets share: shell quoting, Kubernetes names, Kyverno's rule head.
 */
export interface Snippet {
  /** The text to copy. */
  text: string;
  /** Where the tool checks something other than the page did. */
  notes: string[];
}

export interface PolicySnippets {
  cosign: Snippet & { argv: string[][] };
  containersPolicy: Snippet;
  kyverno: Snippet;
  policyController: Snippet;
}

/** Quotes a word for a POSIX shell when it needs it. */
export function shellQuote(word: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

/** A Kubernetes object name (DNS-1123 label, 63 characters at most) for a repository. */
export function kubernetesName(repository: string): string {
  const slug = repository
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '');
  return `verify-${slug}`.slice(0, 63).replace(/-+$/, '');
}

/** A Kyverno ClusterPolicy up to its `imageReferences:` line (every Pod, enforced). */
export function kyvernoHead(repo: string): string[] {
  return [
    'apiVersion: kyverno.io/v1',
    'kind: ClusterPolicy',
    'metadata:',
    `  name: ${kubernetesName(repo)}`,
    'spec:',
    '  webhookConfiguration:',
    '    failurePolicy: Fail',
    '    timeoutSeconds: 30',
    '  background: false',
    '  rules:',
    '    - name: verify-signature',
    '      match:',
    '        any:',
    '          - resources:',
    '              kinds:',
    '                - Pod',
    '      verifyImages:',
    '        - imageReferences:',
  ];
}
