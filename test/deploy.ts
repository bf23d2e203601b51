/**
 * What the deployment files say, read for the tests (README, "Deployment"): the last stage of the
 * Containerfile (what the image holds and how it starts) and the Kubernetes manifests under
 * deploy/kubernetes/, every YAML document of them. Instruction syntax:
 * https://docs.docker.com/reference/dockerfile/
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { IDeployment } from 'kubernetes-models/apps/v1/Deployment';
import type { IConfigMap } from 'kubernetes-models/v1/ConfigMap';
import type { IContainer } from 'kubernetes-models/v1/Container';
import { parseAllDocuments } from 'yaml';

export const REPO_ROOT = join(import.meta.dirname, '..');
export const MANIFEST_DIR = join(REPO_ROOT, 'deploy', 'kubernetes');

/** The final stage of a Containerfile: the image that runs. */
export interface RuntimeStage {
  /** WORKDIR, absolute. */
  workdir: string;
  /** USER as numeric uid and gid. */
  uid: number;
  gid: number;
  /** ENV, in order. */
  env: Record<string, string>;
  /** `COPY --from=<stage> <source> <destination>`: source in that stage, destination in the image. */
  copies: { from: string; source: string; destination: string }[];
  /** CMD in exec form (ENTRYPOINT is refused: there is none). */
  cmd: string[];
  /** Source directory of the build stage the copies come from (its WORKDIR). */
  buildWorkdir: string;
}

/** The instructions of a Containerfile: continuation lines joined, comments and blanks left out. */
function instructions(text: string): { op: string; args: string }[] {
  const joined = text.replace(/\\\n/g, ' ');
  return joined
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => {
      const m = /^(\S+)\s+(.*)$/.exec(l);
      if (m === null) throw new Error(`Containerfile line without arguments: ${l}`);
      return { op: m[1]!.toUpperCase(), args: m[2]! };
    });
}

/** `KEY=value KEY2="value two"` (ENV's form with equals signs; the legacy `ENV KEY value` is refused). */
function envPairs(args: string): [string, string][] {
  const pairs: [string, string][] = [];
  const re = /([A-Za-z_][A-Za-z0-9_]*)=(?:"([^"]*)"|(\S*))(?:\s+|$)/y;
  for (let at = 0; at < args.length; at = re.lastIndex) {
    re.lastIndex = at;
    const m = re.exec(args);
    if (m === null) throw new Error(`ENV not in KEY=value form: ${args}`);
    pairs.push([m[1]!, m[2] ?? m[3]!]);
  }
  return pairs;
}

/**
 * Reads the Containerfile's stages and returns the last one.
 * @throws Error when the last stage lacks WORKDIR, a numeric USER or an exec-form CMD, has an
 *   ENTRYPOINT, or copies from anything but an earlier stage
 */
export function readRuntimeStage(text: string): RuntimeStage {
  const stages: { name: string; lines: { op: string; args: string }[] }[] = [];
  for (const ins of instructions(text)) {
    if (ins.op === 'FROM') stages.push({ name: /\sAS\s+(\S+)$/i.exec(ins.args)?.[1] ?? '', lines: [] });
    else if (ins.op !== 'ARG' || stages.length > 0) stages.at(-1)?.lines.push(ins);
  }
  const last = stages.at(-1);
  if (last === undefined) throw new Error('Containerfile without FROM');
  const stage: Partial<RuntimeStage> & { env: Record<string, string>; copies: RuntimeStage['copies'] } = {
    env: {},
    copies: [],
  };
  for (const { op, args } of last.lines) {
    if (op === 'WORKDIR') stage.workdir = args;
    else if (op === 'ENV') for (const [k, v] of envPairs(args)) stage.env[k] = v;
    else if (op === 'CMD') stage.cmd = JSON.parse(args) as string[];
    else if (op === 'ENTRYPOINT') throw new Error('the runtime stage has an ENTRYPOINT; the tests expect CMD alone');
    else if (op === 'USER') {
      const m = /^(\d+):(\d+)$/.exec(args);
      if (m === null) throw new Error(`USER must be numeric uid:gid, not "${args}"`);
      [stage.uid, stage.gid] = [Number(m[1]), Number(m[2])];
    } else if (op === 'COPY') {
      const m = /^--from=(\S+)\s+(\S+)\s+(\S+)$/.exec(args);
      if (m === null) throw new Error(`the runtime stage copies from outside a build stage: COPY ${args}`);
      stage.copies.push({ from: m[1]!, source: m[2]!, destination: m[3]! });
    }
  }
  const from = new Set(stage.copies.map((c) => c.from));
  const build = stages.find((s) => from.has(s.name));
  const buildWorkdir = build?.lines.findLast((l) => l.op === 'WORKDIR')?.args;
  if (stage.workdir === undefined || stage.uid === undefined || stage.cmd === undefined || buildWorkdir === undefined) {
    throw new Error('the runtime stage needs WORKDIR, USER uid:gid, CMD in exec form, and copies from a build stage');
  }
  if (from.size !== 1) throw new Error('the runtime stage copies from more than one stage');
  return { ...(stage as RuntimeStage), buildWorkdir };
}

/** The repository's Containerfile, read. */
export function runtimeStage(): RuntimeStage {
  return readRuntimeStage(readFileSync(join(REPO_ROOT, 'Containerfile'), 'utf8'));
}

/** One Kubernetes object from a manifest, with where it came from. */
export interface ManifestObject {
  file: string;
  apiVersion: string;
  kind: string;
  name: string;
  object: Record<string, unknown>;
}

/**
 * Every YAML document of every deploy/kubernetes/*.yaml.
 * @throws Error on a YAML error or warning, or a document without apiVersion, kind and name
 */
export function readManifests(dir = MANIFEST_DIR): ManifestObject[] {
  const out: ManifestObject[] = [];
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.yaml') || f.endsWith('.yml'))) {
    for (const doc of parseAllDocuments(readFileSync(join(dir, file), 'utf8'), { prettyErrors: true })) {
      const problems = [...doc.errors, ...doc.warnings];
      if (problems.length > 0) throw new Error(`${file}: ${problems.map((e) => e.message).join('; ')}`);
      const object = doc.toJS() as Record<string, unknown> | null;
      if (object === null) continue;
      const { apiVersion, kind, metadata } = object as {
        apiVersion?: string;
        kind?: string;
        metadata?: { name?: string };
      };
      if (apiVersion === undefined || kind === undefined || metadata?.name === undefined) {
        throw new Error(`${file}: a document without apiVersion, kind or metadata.name`);
      }
      out.push({ file, apiVersion, kind, name: metadata.name, object });
    }
  }
  return out;
}

/** The objects of one kind, typed as that kind. */
export function ofKind<T>(objects: ManifestObject[], kind: string): (T & { metadata: { name: string } })[] {
  return objects.filter((o) => o.kind === kind).map((o) => o.object as unknown as T & { metadata: { name: string } });
}

/** The server's Deployment (named cosign-web) and its container, or undefined. */
export function serverDeployment(
  objects: ManifestObject[],
): { deployment: IDeployment; container: IContainer } | undefined {
  const deployment = ofKind<IDeployment>(objects, 'Deployment').find((d) => d.metadata.name === 'cosign-web');
  const container = deployment?.spec?.template.spec?.containers[0];
  return deployment && container ? { deployment, container } : undefined;
}

/** The environment a container gets: the ConfigMaps of its envFrom, then its env values. */
export function containerEnv(objects: ManifestObject[], c: IContainer): Record<string, string> {
  const env: Record<string, string> = {};
  for (const from of c.envFrom ?? []) {
    const map = ofKind<IConfigMap>(objects, 'ConfigMap').find((m) => m.metadata.name === from.configMapRef?.name);
    Object.assign(env, map?.data ?? {});
  }
  for (const e of c.env ?? []) if (e.value !== undefined) env[e.name] = e.value;
  return env;
}
