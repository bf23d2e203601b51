/**
 * What the container image runs, run without a container engine (none runs on these machines;
 * README, "Deployment"). A private mount namespace gets a root file system made the way the
 * Containerfile's last stage makes it: the host's /usr and /etc standing in for the Debian bookworm
 * base image, WORKDIR holding exactly the stage's copies (node_modules: only the packages
 * package-lock.json does not mark dev, what `npm prune --omit=dev` leaves), all read-only, with a
 * tmpfs on /tmp as the pod's emptyDir. The stage's CMD then runs there, chrooted, as the stage's
 * USER with no capabilities and no new privileges, with the stage's ENV plus the Deployment's
 * (deploy/kubernetes/cosign-web.yaml). It must start, answer the liveness probe as kubelet asks it
 * and serve the page to the public name, and leave nothing written anywhere.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { containerEnv, readManifests, REPO_ROOT, runtimeStage, serverDeployment } from '../deploy.ts';

// Builds the root, then runs the command in it; prints the exit status and what was written.
const SCRIPT = String.raw`
set -euo pipefail
root=$1 plan=$2 uid=$3 gid=$4 workdir=$5; shift 5
mount -t tmpfs -o mode=0755 tmpfs "$root"
for d in usr etc; do mkdir "$root/$d"; mount --rbind "/$d" "$root/$d"; mount -o remount,bind,ro "$root/$d"; done
for l in bin sbin lib lib64; do if [ -L "/$l" ]; then ln -s "$(readlink "/$l")" "$root/$l"; fi; done
mkdir "$root/dev" "$root/proc" "$root/tmp"
mount -t tmpfs -o mode=0755,nosuid tmpfs "$root/dev"
for n in null zero full random urandom; do touch "$root/dev/$n"; mount --bind "/dev/$n" "$root/dev/$n"; done
mkdir "$root/dev/shm"
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$root/dev/shm"
mount -t proc -o nosuid,nodev,noexec proc "$root/proc"
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$root/tmp"
# Sources are bound read-only once; binds made from them are read-only too.
while IFS=$'\t' read -r kind src dest; do
  if [ "$kind" = source ]; then mkdir -p "$dest"; mount --bind "$src" "$dest"; mount -o remount,bind,ro "$dest"; continue; fi
  if [ -d "$src" ]; then mkdir -p "$root$dest"; else mkdir -p "$(dirname "$root$dest")"; touch "$root$dest"; fi
  mount --bind "$src" "$root$dest"
done < "$plan"
mount -o remount,ro "$root/dev"
mount -o remount,ro "$root"
chroot "$root" setpriv --reuid="$uid" --regid="$gid" --clear-groups --inh-caps=-all --bounding-set=-all \
  --no-new-privs -- env -i -C "$workdir" "$@" &
pid=$!
trap 'kill -TERM "$pid"' TERM
status=0
wait "$pid" || status=$?
if kill -0 "$pid" 2>/dev/null; then status=0; wait "$pid" || status=$?; fi
echo "container exit $status"
(cd "$root" && find tmp dev/shm -mindepth 1) | sed 's/^/container wrote /'
`;

/** Mount plan lines: `source <dir> <staging>` once per tree, then `bind <staging path> <image path>`. */
function mountPlan(staging: string, stage: ReturnType<typeof runtimeStage>): string[] {
  const repo = join(staging, 'repo');
  const modules = join(staging, 'node_modules');
  const plan = [
    `source\t${REPO_ROOT}\t${repo}`,
    `source\t${realpathSync(join(REPO_ROOT, 'node_modules'))}\t${modules}`,
  ];
  for (const copy of stage.copies) {
    const inRepo = posix.relative(stage.buildWorkdir, copy.source);
    const dest = posix.resolve(stage.workdir, copy.destination);
    if (inRepo !== 'node_modules') {
      plan.push(`bind\t${join(repo, inRepo)}\t${dest}`);
      continue;
    }
    const lock = JSON.parse(readFileSync(join(REPO_ROOT, 'package-lock.json'), 'utf8')) as {
      packages: Record<string, { dev?: boolean }>;
    };
    for (const [path, entry] of Object.entries(lock.packages)) {
      const name = path.slice('node_modules/'.length);
      // Top-level packages only (nested ones come with their parent); platform packages for
      // other systems are not installed, here or by `npm ci` in the image.
      if (path === '' || entry.dev === true || name.includes('node_modules/')) continue;
      if (existsSync(join(REPO_ROOT, path))) plan.push(`bind\t${join(modules, name)}\t${dest}/${name}`);
    }
  }
  return plan;
}

/** The server's Deployment: its environment and its liveness probe's path and Host header. */
function deployment(): { env: Record<string, string>; probe: { path: string; host: string } } {
  const objects = readManifests();
  const { container } = serverDeployment(objects)!;
  const get = container.livenessProbe!.httpGet!;
  const host = get.httpHeaders!.find((h) => h.name.toLowerCase() === 'host')!.value;
  return { env: containerEnv(objects, container), probe: { path: get.path!, host } };
}

function get(port: number, path: string, host: string): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, headers: { Host: host }, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode!, type: res.headers['content-type'] ?? '', body }));
    });
    req.on('error', reject);
  });
}

describe('the container image, run on a read-only tree as its non-root user', () => {
  const stage = runtimeStage();
  let dir = '';
  let child: ChildProcess | undefined;
  let output = '';
  let exited: Promise<number | null>;
  let port = 0;

  beforeAll(async () => {
    if (process.getuid?.() !== 0) throw new Error('this test needs root, for a mount namespace and chroot');
    for (const tool of ['unshare', 'setpriv', 'chroot']) {
      if (spawnSync('which', [tool]).status !== 0) throw new Error(`this test needs ${tool} (util-linux, coreutils)`);
    }
    if (!existsSync(join(REPO_ROOT, 'dist', 'index.html'))) {
      throw new Error('dist/ is missing: run "npx vite build" first (npm test builds before it tests)');
    }
    dir = mkdtempSync(join(tmpdir(), 'cosign-web-container-'));
    mkdirSync(join(dir, 'root'));
    writeFileSync(join(dir, 'plan'), `${mountPlan(join(dir, 'staging'), stage).join('\n')}\n`);
    // The base image's PATH, HOME as a container engine sets it for a user without a passwd
    // entry, the image's ENV, then the Deployment's. The tests listen on loopback only (HOST),
    // on a free port (PORT=0), and run no Redis (RELAY_LOCKS_URL is left out).
    const env: Record<string, string> = {
      PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
      HOME: '/',
      ...stage.env,
      ...deployment().env,
      HOST: '127.0.0.1',
      PORT: '0',
    };
    delete env.RELAY_LOCKS_URL;
    const args = [join(dir, 'root'), join(dir, 'plan'), String(stage.uid), String(stage.gid), stage.workdir];
    const assignments = Object.entries(env).map(([k, v]) => `${k}=${v}`);
    child = spawn(
      'unshare',
      ['--mount', '--propagation', 'private', 'bash', '-c', SCRIPT, 'container', ...args, ...assignments, ...stage.cmd],
      { stdio: ['ignore', 'pipe', 'pipe'], detached: true },
    );
    exited = new Promise((resolve) => child!.on('close', (code) => resolve(code)));
    const listening = new Promise<number>((resolve, reject) => {
      const seen = (chunk: Buffer) => {
        output += chunk.toString();
        const m = /cosign-web listening on 127\.0\.0\.1:(\d+)/.exec(output);
        if (m !== null) resolve(Number(m[1]));
      };
      child!.stdout!.on('data', seen);
      child!.stderr!.on('data', seen);
      void exited.then(() => reject(new Error(`the server stopped before listening:\n${output}`)));
    });
    port = await listening;
  }, 120_000);

  afterAll(() => {
    if (child?.pid !== undefined && child.exitCode === null) process.kill(-child.pid, 'SIGKILL');
    if (dir !== '') rmSync(dir, { recursive: true, force: true });
  });

  it('runs the CMD as the image user, without capabilities or new privileges', () => {
    const bash = child!.pid!;
    const server = Number(readFileSync(`/proc/${bash}/task/${bash}/children`, 'utf8').trim());
    expect(readFileSync(`/proc/${server}/cmdline`, 'utf8').split('\0').slice(0, -1)).toEqual(stage.cmd);
    const status = readFileSync(`/proc/${server}/status`, 'utf8');
    expect(status).toMatch(new RegExp(`^Uid:\\t${stage.uid}\\t${stage.uid}\\t${stage.uid}\\t${stage.uid}$`, 'm'));
    expect(status).toMatch(new RegExp(`^Gid:\\t${stage.gid}\\t${stage.gid}\\t${stage.gid}\\t${stage.gid}$`, 'm'));
    expect(status).toMatch(/^Groups:[\t ]*$/m);
    expect(status).toMatch(/^CapEff:\t0000000000000000$/m);
    expect(status).toMatch(/^CapBnd:\t0000000000000000$/m);
    expect(status).toMatch(/^NoNewPrivs:\t1$/m);
  });

  it('answers the liveness probe as kubelet sends it, and serves the page to its public name', async () => {
    const { probe, env } = deployment();
    const health = await get(port, probe.path, probe.host);
    expect(health.status).toBe(200);
    expect(JSON.parse(health.body)).toEqual({ status: 'ok' });

    const publicHost = new URL(env.PUBLIC_ORIGINS!.split(',')[0]!).host;
    const page = await get(port, '/', publicHost);
    expect(page.status).toBe(200);
    expect(page.type).toMatch(/^text\/html/);
    const script = /<script type="module" crossorigin src="([^"]+)"/.exec(page.body)?.[1];
    expect(script).toMatch(/^\/assets\/.+\.js$/);
    const asset = await get(port, script!, publicHost);
    expect(asset.status).toBe(200);
    expect(asset.body).toBe(readFileSync(join(REPO_ROOT, 'dist', script!), 'utf8'));
  });

  it('stops on SIGTERM and has written nothing, not even to its emptyDir', async () => {
    process.kill(child!.pid!, 'SIGTERM');
    expect(await exited).toBe(0);
    expect(output).toContain('container exit 0');
    expect(output).not.toContain('container wrote ');
    expect(output).not.toMatch(/EROFS|EACCES|read-only file system/i);
  }, 60_000);
});
