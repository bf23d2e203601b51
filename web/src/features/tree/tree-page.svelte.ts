/**
 * State of the Tree page (#/tree?image=…[&key=…]): the image and the key whose verdicts are
 * shown, a run of shared/ops/tree.ts through the page's RegistrySession, and removing
 * signatures with shared/ops/remove.ts: a removal is first proposed (the dialog names exactly
 * what goes), then confirmed or cancelled; the rewrite of `.sig` and of the referrers index takes
 * the relay's per-tag lock, as signing does, and the tree is read again afterwards.
 */
import { buildTree, type ImageTree, type TreeItem, type TreeKey, type TreeNode } from '../../../../shared/ops/tree.ts';
import { allSignatureTargets, removeSignatures, targetOf, type RemoveTarget } from '../../../../shared/ops/remove.ts';
import type { TagLock } from '../../../../shared/ops/sign.ts';
import { parseReference } from '../../../../shared/registry/reference.ts';
import type { RegistrySession } from '../../app/registry.svelte.ts';
import { TREE_ROUTE, treeHash, type Route } from '../../../../shared/cosign/route.ts';
import { describeError } from '../../lib/errors.ts';
import { readPublicKeyText, type PublicKeyText } from '../../lib/public-key.ts';

type TreeStatus =
  | { state: 'idle' }
  | { state: 'working'; message: string; done: number; total: number }
  | { state: 'done'; message: string }
  | { state: 'error'; code: string; message: string };

/** A removal waiting for the person's confirmation. */
export interface PendingRemoval {
  node: TreeNode;
  targets: RemoveTarget[];
  /** "the image", "platform linux/arm64/v8". */
  where: string;
}

function nodeTitle(n: TreeNode): string {
  if (n.role === 'platform') return `platform ${n.platform}`;
  return n.role === 'index' ? 'the index' : 'the image';
}

/** One line per manifest for the summary at the top: how many signatures, how many verify. */
interface NodeGlance {
  title: string;
  digest: string;
  signatures: number;
  verified: number;
  fails: number;
}

export function glance(tree: ImageTree): NodeGlance[] {
  return [tree.root, ...tree.root.children].map((n) => {
    const sigs = [...n.sig.items, ...n.referrers.items].filter((i) => i.kind === 'signature');
    return {
      title: n.role === 'platform' ? (n.platform ?? 'platform') : n.role === 'index' ? 'index' : 'image',
      digest: n.digest,
      signatures: sigs.length,
      verified: sigs.filter((i) => i.verdict.state === 'verified').length,
      fails: sigs.filter((i) => i.verdict.state === 'fails').length,
    };
  });
}

export class TreePage {
  /** The form's fields, bound by the page. */
  image = $state('');
  keyText = $state('');
  username = $state('');
  password = $state('');
  #status = $state.raw<TreeStatus>({ state: 'idle' });
  #tree = $state.raw<ImageTree | null>(null);
  #pending = $state.raw<PendingRemoval | null>(null);
  readonly #session: RegistrySession;
  readonly #knownKeys: () => TreeKey[];
  readonly #lock: TagLock;
  readonly #showHash: (hash: string) => void;
  #run = 0;

  /** `showHash` puts the fragment for what the form says in the address bar (to bookmark and share). */
  constructor(session: RegistrySession, knownKeys: () => TreeKey[], lock: TagLock, showHash: (hash: string) => void) {
    this.#session = session;
    this.#knownKeys = knownKeys;
    this.#lock = lock;
    this.#showHash = showHash;
  }

  get status(): TreeStatus {
    return this.#status;
  }

  get tree(): ImageTree | null {
    return this.#tree;
  }

  /** The removal the dialog asks to confirm. */
  get pending(): PendingRemoval | null {
    return this.#pending;
  }

  /** The key in the form, read; null while the field is empty. */
  readonly key = $derived.by((): PublicKeyText | null => readPublicKeyText(this.keyText));

  /** Fills the form from `#/tree?…`; true when it named an image. */
  loadRoute({ path, params }: Route): boolean {
    const image = params.get('image')?.trim();
    if (path !== TREE_ROUTE || !image) return false;
    const key = params.get('key')?.trim() ?? '';
    if (image === this.image && key === this.keyText.trim() && this.tree) return false;
    this.image = image;
    this.keyText = key;
    return true;
  }

  /** Reads the tree of what the form says, and shows its fragment. */
  async submit(): Promise<void> {
    const k = this.key;
    this.#showHash(treeHash(this.image.trim(), k?.ok ? k.spki : null));
    await this.run();
  }

  /** Reads the tree. Never throws: the status says how it went. */
  async run(message?: string): Promise<void> {
    const run = ++this.#run;
    const image = this.image.trim();
    const fail = (code: string, text: string): void => {
      this.#status = { state: 'error', code, message: text };
    };
    if (!image) return fail('REGISTRY_REFERENCE_INVALID', 'Type the image reference to show.');
    const key = this.key;
    if (key && !key.ok) return fail('KEY_PEM_INVALID', key.message);
    try {
      const ref = parseReference(image);
      if (this.username.trim()) this.#session.setCredentials(ref.registry, this.username.trim(), this.password);
    } catch (e) {
      const d = describeError(e);
      return fail(d.code, d.message);
    }
    this.#status = { state: 'working', message: 'Reading…', done: 0, total: 1 };
    try {
      const tree = await buildTree(this.#session.client, {
        image,
        key: key?.ok ? key.spki : null,
        knownKeys: this.#knownKeys(),
        concurrency: 12,
        onProgress: (done, total, m) => {
          if (run === this.#run) this.#status = { state: 'working', message: m, done, total };
        },
      });
      if (run !== this.#run) return;
      this.#tree = tree;
      const nodes = [tree.root, ...tree.root.children];
      const count = (kind: TreeItem['kind']): number =>
        nodes.reduce(
          (n, node) =>
            n +
            [...node.sig.items, ...node.att.items, ...node.sbom.items, ...node.referrers.items].filter(
              (i) => i.kind === kind,
            ).length,
          0,
        );
      const sigs = count('signature');
      const summary = `${sigs} signature${sigs === 1 ? '' : 's'}, ${count('attestation')} attestation${count('attestation') === 1 ? '' : 's'}, ${count('sbom') + count('artifact')} other object${count('sbom') + count('artifact') === 1 ? '' : 's'} on ${tree.reference}.`;
      this.#status = { state: 'done', message: message ? `${message} ${summary}` : summary };
    } catch (e) {
      if (run !== this.#run) return;
      this.#tree = null;
      const d = describeError(e);
      fail(d.code, d.message);
    }
  }

  /** Proposes removing one signature; nothing happens until confirmRemoval. */
  proposeRemove(node: TreeNode, item: TreeItem): void {
    this.#pending = { node, targets: [targetOf(node, item)], where: nodeTitle(node) };
  }

  /** Proposes removing every signature of one node (the image, or one platform). */
  proposeRemoveAll(node: TreeNode): void {
    const targets = allSignatureTargets(node);
    if (targets.length) this.#pending = { node, targets, where: nodeTitle(node) };
  }

  cancelRemoval(): void {
    this.#pending = null;
  }

  /** Removes what the pending removal names, then reads the tree again. Never throws. */
  async confirmRemoval(): Promise<void> {
    const pending = this.pending;
    const tree = this.tree;
    this.#pending = null;
    if (!pending || !tree) return;
    const n = pending.targets.length;
    this.#status = { state: 'working', message: `Removing ${n} signature${n === 1 ? '' : 's'}…`, done: 0, total: 1 };
    try {
      const report = await removeSignatures({
        client: this.#session.client,
        repo: tree.repo,
        subject: pending.node.digest,
        targets: pending.targets,
        lock: this.#lock,
        onProgress: (done, total, message) => (this.#status = { state: 'working', message, done, total }),
      });
      const removed = report.removed.length;
      await this.run(
        `Removed ${removed} signature${removed === 1 ? '' : 's'} from ${pending.where}; ${report.intact} other object${report.intact === 1 ? '' : 's'} read back intact.` +
          (report.vanished.length
            ? ` Removed meanwhile by another writer, and not put back: ${report.vanished.join(', ')}.`
            : ''),
      );
    } catch (e) {
      const d = describeError(e);
      this.#status = { state: 'error', code: d.code, message: `Not removed: ${d.message}` };
      // Show what the registry holds now, keeping the error in view.
      const status = this.status;
      await this.run();
      this.#status = status;
    }
  }
}
