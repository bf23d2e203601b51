/** What the policy snippets are: text to copy, and notes where a tool checks otherwise. */
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
