/**
 * The Kubernetes manifests under deploy/kubernetes/ (README, "Deployment"): every document is
 * checked offline against the Kubernetes API's OpenAPI schema (kubernetes-models), then against
 * what this server needs — probes on /readyz and /healthz at the container's port with a Host the
 * server serves, non-root, read-only root, no capabilities, RuntimeDefault seccomp, settings the
 * server's own parsers accept, locks in a Redis the manifests run, and network policies that let the
 * relay out to its registries' ports only. Broken copies in memory show each check can fail.
 * https://kubernetes.io/docs/reference/kubernetes-api/
 */
import * as core from 'kubernetes-models/v1';
import * as apps from 'kubernetes-models/apps/v1';
import * as networking from 'kubernetes-models/networking.k8s.io/v1';
import * as policy from 'kubernetes-models/policy/v1';
import type { IDeployment } from 'kubernetes-models/apps/v1/Deployment';
import type { INetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy';
import type { IContainer } from 'kubernetes-models/v1/Container';
import type { IProbe } from 'kubernetes-models/v1/Probe';
import type { IService } from 'kubernetes-models/v1/Service';
import { describe, expect, it } from 'vitest';
import { parseAuthority } from '../../../server/relay/host.ts';
import { relayOptionsFromEnv } from '../../../server/relay/config.ts';
import { parsePublicOrigins, Site } from '../../../server/site.ts';
import {
  containerEnv,
  ofKind,
  readManifests,
  runtimeStage,
  serverDeployment,
  type ManifestObject,
  type RuntimeStage,
} from '../../deploy.ts';

type Validator = new (data: unknown) => { validate(): void };
const SCHEMAS: Record<string, Record<string, unknown>> = {
  v1: core,
  'apps/v1': apps,
  'networking.k8s.io/v1': networking,
  'policy/v1': policy,
};

/** The schema's complaint about one object, or undefined when it validates. */
function schemaProblem(m: ManifestObject): string | undefined {
  const Model = SCHEMAS[m.apiVersion]?.[m.kind] as Validator | undefined;
  if (Model === undefined) return `${m.file}: no schema here for ${m.apiVersion} ${m.kind}`;
  try {
    new Model(m.object).validate();
    return undefined;
  } catch (e) {
    return `${m.file}: ${m.kind}/${m.name}: ${(e as Error).message}`;
  }
}

const SERVER = 'cosign-web';
const selects = (selector: Record<string, string> | undefined, labels: Record<string, string> | undefined) =>
  selector !== undefined &&
  Object.keys(selector).length > 0 &&
  Object.entries(selector).every(([k, v]) => labels?.[k] === v);
const podLabels = (d: IDeployment | undefined) => d?.spec?.template.metadata?.labels;
const portOf = (c: IContainer, port: number | string | undefined) =>
  c.ports?.find((p) => p.containerPort === port || p.name === port)?.containerPort;

/** What every Deployment's pods must be: non-root, read-only, no capabilities, bounded. */
function podProblems(d: IDeployment & { metadata: { name: string } }): string[] {
  const p: string[] = [];
  const pod = d.spec?.template.spec;
  const at = `Deployment/${d.metadata.name}`;
  if (pod?.automountServiceAccountToken !== false) p.push(`${at}: mounts a service account token`);
  const volumes = new Map((pod?.volumes ?? []).map((v) => [v.name, v]));
  for (const c of pod?.containers ?? []) {
    const sc = c.securityContext;
    if ((sc?.runAsNonRoot ?? pod?.securityContext?.runAsNonRoot) !== true) p.push(`${at}: runAsNonRoot is not true`);
    if (sc?.readOnlyRootFilesystem !== true) p.push(`${at}: readOnlyRootFilesystem is not true`);
    if (sc?.allowPrivilegeEscalation !== false) p.push(`${at}: allowPrivilegeEscalation is not false`);
    if (!(sc?.capabilities?.drop ?? []).includes('ALL')) p.push(`${at}: capabilities do not drop ALL`);
    const seccomp = sc?.seccompProfile ?? pod?.securityContext?.seccompProfile;
    if (seccomp?.type !== 'RuntimeDefault') p.push(`${at}: seccomp profile is not RuntimeDefault`);
    if (c.resources?.requests?.memory === undefined || c.resources.limits?.memory === undefined) {
      p.push(`${at}: memory request or limit missing`);
    }
    for (const m of c.volumeMounts ?? []) {
      if (volumes.get(m.name)?.emptyDir === undefined) p.push(`${at}: ${m.mountPath} is not an emptyDir`);
    }
  }
  return p;
}

/** A probe: httpGet on `path` at the container's port, with a Host the server answers to. */
function probeProblems(name: string, probe: IProbe | undefined, path: string, c: IContainer, site: Site): string[] {
  const get = probe?.httpGet;
  if (get === undefined) return [`${name} probe is not an httpGet`];
  const p: string[] = [];
  if (get.path !== path) p.push(`${name} probe asks ${get.path}, not ${path}`);
  if (portOf(c, get.port) === undefined) p.push(`${name} probe's port ${get.port} is not a port of the container`);
  const host = get.httpHeaders?.find((h) => h.name.toLowerCase() === 'host')?.value;
  if (host === undefined) p.push(`${name} probe sends the pod's IP as Host, which the server answers with 421`);
  else if (!site.servesHost(host.toLowerCase()))
    p.push(`${name} probe sends Host ${host}, which the server does not serve`);
  return p;
}

/** The server's Deployment: replicas, image user and port, probes, settings, Service. */
function serverProblems(objects: ManifestObject[], stage: RuntimeStage): string[] {
  const found = serverDeployment(objects);
  if (found === undefined) return [`no Deployment ${SERVER}`];
  const { deployment: d, container: c } = found;
  const p: string[] = [];
  if ((d.spec?.replicas ?? 1) < 2) p.push(`${SERVER} runs fewer than 2 replicas`);
  const runAs = c.securityContext?.runAsUser ?? d.spec?.template.spec?.securityContext?.runAsUser;
  if (runAs !== stage.uid) p.push(`${SERVER} runs as ${runAs}, not the image's user ${stage.uid}`);
  const env = { ...stage.env, ...containerEnv(objects, c) };
  if (portOf(c, Number(env.PORT)) === undefined) p.push(`${SERVER}: PORT ${env.PORT} is not a container port`);
  if (env.EMBEDDED_REGISTRY !== 'off') p.push(`${SERVER}: the embedded registry is not off`);
  let site = new Site();
  try {
    site = new Site({ publicOrigins: parsePublicOrigins(env.PUBLIC_ORIGINS), listenHost: env.HOST });
    relayOptionsFromEnv(env);
  } catch (e) {
    p.push(`${SERVER}: the server refuses its settings: ${(e as Error).message}`);
  }
  p.push(...probeProblems('readiness', c.readinessProbe, '/readyz', c, site));
  p.push(...probeProblems('liveness', c.livenessProbe, '/healthz', c, site));
  if (c.startupProbe !== undefined) p.push(...probeProblems('startup', c.startupProbe, '/healthz', c, site));
  const service = ofKind<IService>(objects, 'Service').find((s) => selects(s.spec?.selector, podLabels(d)));
  if (service === undefined) p.push(`no Service selects the ${SERVER} pods`);
  for (const port of service?.spec?.ports ?? []) {
    if (portOf(c, port.targetPort) === undefined)
      p.push(`Service/${service?.metadata.name}: targetPort ${port.targetPort} is not a container port`);
  }
  return [...p, ...lockProblems(objects, env), ...networkProblems(objects, d, c, env)];
}

/** RELAY_LOCKS_URL names a Service of these manifests, at a port its pods listen on. */
function lockProblems(objects: ManifestObject[], env: Record<string, string>): string[] {
  const url = URL.canParse(env.RELAY_LOCKS_URL ?? '') ? new URL(env.RELAY_LOCKS_URL!) : undefined;
  if (url === undefined || !['redis:', 'rediss:'].includes(url.protocol))
    return [`${SERVER}: RELAY_LOCKS_URL is not a redis:// URL`];
  const service = ofKind<IService>(objects, 'Service').find((s) => s.metadata.name === url.hostname);
  const port = service?.spec?.ports?.find((x) => x.port === Number(url.port || 6379));
  const pods = ofKind<IDeployment>(objects, 'Deployment').find((x) => selects(service?.spec?.selector, podLabels(x)));
  const container = pods?.spec?.template.spec?.containers[0];
  if (port === undefined || container === undefined || portOf(container, port.targetPort) === undefined) {
    return [`${SERVER}: RELAY_LOCKS_URL names ${url.host}, which no Service and Deployment here serve`];
  }
  return [];
}

/** The ports the relay must reach: each allowed registry's, 443 when unsaid (80 for plain HTTP). */
function registryPorts(env: Record<string, string>): Set<number> {
  const plain = new Set((env.RELAY_PLAIN_HTTP_REGISTRIES ?? '').split(',').map((s) => s.trim()));
  const ports = new Set([443]);
  for (const entry of (env.RELAY_ALLOWED_REGISTRIES ?? '').split(',').map((s) => s.trim())) {
    if (entry === '') continue;
    ports.add(parseAuthority(entry)?.port ?? (plain.has(entry) ? 80 : 443));
  }
  return ports;
}

type Rule = NonNullable<INetworkPolicy['spec']>['egress'];

/** The server's and Redis's network policies. */
function networkProblems(
  objects: ManifestObject[],
  d: IDeployment,
  c: IContainer,
  env: Record<string, string>,
): string[] {
  const policies = ofKind<INetworkPolicy>(objects, 'NetworkPolicy');
  const mine = policies.find((x) => selects(x.spec?.podSelector.matchLabels, podLabels(d)));
  if (mine?.spec === undefined) return [`no NetworkPolicy selects the ${SERVER} pods`];
  const p: string[] = [];
  const spec = mine.spec;
  if (!(['Ingress', 'Egress'] as const).every((t) => spec.policyTypes?.includes(t)))
    p.push('the server policy does not limit both ways');
  const inPorts = (spec.ingress ?? []).flatMap((r) => r.ports ?? []).map((x) => portOf(c, x.port));
  if (!inPorts.includes(portOf(c, 'http') ?? -1)) p.push("the server policy lets nothing in on the server's port");
  const egress: NonNullable<Rule> = spec.egress ?? [];
  if (egress.some((r) => (r.ports ?? []).length === 0)) p.push('a server egress rule allows every port');
  const redis = ofKind<IDeployment>(objects, 'Deployment').find((x) => x.metadata.name === 'redis');
  const out = new Set<string>();
  for (const rule of egress) {
    const toRedis =
      (rule.to ?? []).length > 0 && (rule.to ?? []).every((t) => selects(t.podSelector?.matchLabels, podLabels(redis)));
    const toPublic = (rule.to ?? []).some((t) => t.ipBlock !== undefined);
    for (const x of rule.ports ?? [])
      out.add(`${x.port}/${x.protocol ?? 'TCP'}${toRedis ? ' redis' : toPublic ? ' public' : ''}`);
  }
  const wanted = ['53/UDP', '53/TCP', '6379/TCP redis', ...[...registryPorts(env)].map((x) => `${x}/TCP public`)];
  for (const w of wanted) if (!out.has(w)) p.push(`the server policy does not let out ${w}`);
  for (const o of out)
    if (!wanted.includes(o)) p.push(`the server policy lets out ${o}, which the server does not need`);
  const theirs = policies.find((x) => selects(x.spec?.podSelector.matchLabels, podLabels(redis)));
  const from = theirs?.spec?.ingress ?? [];
  const onlyServer =
    from.length > 0 &&
    from.every(
      (r) =>
        (r.from ?? []).length > 0 && (r.from ?? []).every((f) => selects(f.podSelector?.matchLabels, podLabels(d))),
    );
  if (!onlyServer || (theirs?.spec?.egress ?? []).length > 0 || !theirs?.spec?.policyTypes?.includes('Egress')) {
    p.push('the Redis policy lets in more than the server pods, or lets anything out');
  }
  return p;
}

/** Everything this file checks beyond the schema. */
function problems(objects: ManifestObject[], stage: RuntimeStage): string[] {
  return [...ofKind<IDeployment>(objects, 'Deployment').flatMap(podProblems), ...serverProblems(objects, stage)];
}

/** A copy of the manifests with one change to the object `kind/name`. */
function broken(kind: string, name: string, change: (o: never) => void): ManifestObject[] {
  const copy = readManifests();
  change(copy.find((o) => o.kind === kind && o.name === name)!.object as never);
  return copy;
}
type Dep = IDeployment & { spec: { template: { spec: { containers: IContainer[] } } } };
const server = (change: (c: IContainer, d: Dep) => void) =>
  broken('Deployment', SERVER, (d: Dep) => change(d.spec.template.spec.containers[0]!, d));

describe('deploy/kubernetes manifests', () => {
  const objects = readManifests();
  const stage = runtimeStage();

  it('hold the server, its Service, Redis and the network policies', () => {
    expect(objects.map((o) => `${o.kind}/${o.name}`).sort()).toEqual([
      'ConfigMap/cosign-web',
      'Deployment/cosign-web',
      'Deployment/redis',
      'NetworkPolicy/cosign-web',
      'NetworkPolicy/redis',
      'PodDisruptionBudget/cosign-web',
      'Service/cosign-web',
      'Service/redis',
    ]);
  });

  it('validate, every document, against the Kubernetes API schema', () => {
    expect(objects.map(schemaProblem).filter((x) => x !== undefined)).toEqual([]);
  });

  it('give the server and Redis what they need, and no more', () => {
    expect(problems(objects, stage)).toEqual([]);
  });

  it('fail the schema when a field has the wrong type or a required one is missing', () => {
    const cases: [ManifestObject[], string][] = [
      [server((c) => (c.ports![0]!.containerPort = 'http' as never)), 'containerPort must be integer'],
      [server((c) => (c.securityContext!.capabilities!.drop = 'ALL' as never)), 'drop must be array'],
      [
        broken('Deployment', 'redis', (d: Dep) => delete (d.spec as Partial<Dep['spec']>).selector),
        'data/spec must have required property selector',
      ],
      [
        broken(
          'NetworkPolicy',
          'redis',
          (n: INetworkPolicy) => (n.spec!.ingress![0]!.ports![0]!.port = [6379] as never),
        ),
        'ports/0/port',
      ],
    ];
    for (const [copy, message] of cases) {
      expect(
        copy
          .map(schemaProblem)
          .filter((x) => x !== undefined)
          .join('\n'),
      ).toContain(message);
    }
  });

  it('fail the checks on a broken copy', () => {
    const cases: [ManifestObject[], string][] = [
      [server((c) => (c.readinessProbe!.httpGet!.path = '/healthz')), 'readiness probe asks /healthz, not /readyz'],
      [
        server((c) => (c.livenessProbe!.httpGet!.port = 9090)),
        "liveness probe's port 9090 is not a port of the container",
      ],
      [server((c) => delete c.readinessProbe!.httpGet!.httpHeaders), 'answers with 421'],
      [server((c) => (c.securityContext!.readOnlyRootFilesystem = false)), 'readOnlyRootFilesystem is not true'],
      [
        server((c, d) => (delete c.securityContext!.runAsNonRoot, delete d.spec.template.spec.securityContext)),
        'runAsNonRoot is not true',
      ],
      [
        server((c) => (c.env!.find((e) => e.name === 'RELAY_LOCKS_URL')!.value = 'redis://cache:6379')),
        'names cache:6379',
      ],
      [
        broken(
          'ConfigMap',
          SERVER,
          (m: core.IConfigMap) => (m.data!.RELAY_ALLOWED_REGISTRIES = 'ghcr.io,registry.example:5000'),
        ),
        'does not let out 5000/TCP public',
      ],
      [
        broken('ConfigMap', SERVER, (m: core.IConfigMap) => (m.data!.PUBLIC_ORIGINS = 'cosign-web.example')),
        'the server refuses its settings',
      ],
      [broken('NetworkPolicy', SERVER, (n: INetworkPolicy) => delete n.spec!.egress![2]!.ports), 'allows every port'],
      [
        broken('NetworkPolicy', 'redis', (n: INetworkPolicy) => delete n.spec!.ingress![0]!.from),
        'the Redis policy lets in more',
      ],
    ];
    for (const [copy, message] of cases) {
      expect(copy.map(schemaProblem).filter((x) => x !== undefined)).toEqual([]);
      expect(problems(copy, stage).join('\n')).toContain(message);
    }
  });
});
