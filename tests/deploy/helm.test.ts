import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../scripts/project.ts';
import { requireTool } from '../../scripts/tools/tools.ts';
import { runTool } from '../helpers/deploy-tools.ts';
import { readmeSection, shellBlocks, shellWords } from '../helpers/readme.ts';
import { spawnSync } from 'node:child_process';

/**
 * The Helm chart, checked offline by the real tools: `helm lint`, `helm
 * template` of the README's install command and of every optional part,
 * Kubernetes' own schemas (kubernetes-validate, strict: unknown fields are
 * errors) for the oldest and newest versions the chart supports, checkov with
 * only the findings the chart annotates as kept on purpose, and the chart's
 * refusals of settings that cannot work.
 */

const CHART = path.join(PROJECT_ROOT, 'deploy', 'helm', 'pk-mcp');
const KUBE_VERSIONS = ['1.27.0', '1.37.0'];
const DIGEST = `sha256:${'0123456789abcdef'.repeat(4)}`;

interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; annotations?: Record<string, string>; labels?: Record<string, string> };
  spec?: any; // eslint-disable-line @typescript-eslint/no-explicit-any
  data?: Record<string, string>;
}

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
const tmp = () => {
  const d = mkdtempSync(path.join(tmpdir(), 'pk-helm-'));
  dirs.push(d);
  return d;
};

function helm(args: string[]) {
  return runTool('helm', args, { env: { HELM_CACHE_HOME: path.join(tmp(), 'cache'), HELM_CONFIG_HOME: path.join(tmp(), 'config'), HELM_DATA_HOME: path.join(tmp(), 'data') } });
}

/** `helm template` with values from a YAML text; the manifests, or the render's error. */
function render(valuesYaml = '', extra: string[] = []): { yaml?: string; error?: string } {
  const dir = tmp();
  const values = path.join(dir, 'values.yaml');
  writeFileSync(values, valuesYaml);
  const r = helm(['template', 'pk-mcp', CHART, '--namespace', 'pk-mcp', '-f', values, ...extra]);
  return r.status === 0 ? { yaml: r.stdout } : { error: r.stderr.trim() };
}

/** Multi-document YAML to objects, with the YAML parser of the tools' own Python (PyYAML, which checkov uses). */
function parse(yaml: string): K8sObject[] {
  const python = path.join(path.dirname(requireTool('checkov')), 'python');
  const r = spawnSync(python, ['-c', 'import sys, json, yaml; print(json.dumps([d for d in yaml.safe_load_all(sys.stdin) if d]))'], { input: yaml, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`rendered YAML does not parse: ${r.stderr}`);
  return JSON.parse(r.stdout) as K8sObject[];
}

function validate(yaml: string): string {
  const dir = tmp();
  const file = path.join(dir, 'manifests.yaml');
  writeFileSync(file, yaml);
  const out: string[] = [];
  for (const v of KUBE_VERSIONS) {
    const r = runTool('kubernetes-validate', ['--kubernetes-version', v, '--strict', '--quiet', file]);
    out.push(r.stdout + r.stderr);
    expect(r.status, `kubernetes-validate ${v}:\n${r.stdout}${r.stderr}`).toBe(0);
  }
  return out.join('\n');
}

/** The README's `helm install …` line, as written, turned into `helm template` (same chart, release, namespace, values). */
function readmeInstall(): string[] {
  const [block] = shellBlocks(readmeSection('Kubernetes (Helm)'));
  const line = block!.find((l) => l.startsWith('helm install'))!;
  const words = shellWords(line);
  expect(words.slice(0, 4)).toEqual(['helm', 'install', 'pk-mcp', 'deploy/helm/pk-mcp']);
  const args = words.slice(4).map((w) => (w === '-n' ? '--namespace' : w));
  // The Secrets the README creates are the ones the chart's defaults name.
  for (const name of ['pk-mcp-postgres', 'pk-mcp-redis', 'pk-mcp-neo4j']) {
    expect(block!.some((l) => l.startsWith(`kubectl -n pk-mcp create secret generic ${name} --from-literal=password=`)), name).toBe(true);
  }
  return ['template', 'pk-mcp', CHART, ...args];
}

const byKind = (objs: K8sObject[], kind: string) => objs.filter((o) => o.kind === kind);
const named = (objs: K8sObject[], kind: string, suffix: string) => objs.find((o) => o.kind === kind && o.metadata.name.endsWith(suffix))!;

const FULL_VALUES = `
image: { digest: "${DIGEST}" }
ingress:
  enabled: true
  className: nginx
  hosts: [{ host: pk-mcp.example.com, paths: [{ path: /, pathType: Prefix }] }]
  tls: [{ hosts: [pk-mcp.example.com], secretName: pk-mcp-tls }]
api: { autoscaling: { enabled: true } }
worker: { keda: { enabled: true } }
secrets:
  adminToken: { existingSecret: pk-mcp-admin }
  webhookSecret: { existingSecret: pk-mcp-webhook }
  openaiApiKey: { existingSecret: pk-mcp-openai }
  gitToken: { existingSecret: pk-mcp-git }
persistence: { backups: { existingClaim: pk-mcp-backups } }
`;

describe('Helm chart deploy/helm/pk-mcp', () => {
  it('passes helm lint (strict) with the defaults and with every optional part on', () => {
    for (const values of ['', FULL_VALUES]) {
      const dir = tmp();
      writeFileSync(path.join(dir, 'v.yaml'), values);
      const r = helm(['lint', '--strict', CHART, '-f', path.join(dir, 'v.yaml')]);
      expect(r.status, r.stdout + r.stderr).toBe(0);
      expect(r.stdout).toContain('0 chart(s) failed');
    }
  });

  it("renders the README's install command into manifests valid for Kubernetes 1.27 and 1.37", () => {
    const r = helm(readmeInstall());
    expect(r.status, r.stderr).toBe(0);
    validate(r.stdout);
    const objs = parse(r.stdout);
    expect(objs.map((o) => o.kind).sort()).toEqual(
      ['ConfigMap', 'Deployment', 'Deployment', 'Job', 'NetworkPolicy', 'NetworkPolicy', 'NetworkPolicy', 'PodDisruptionBudget', 'PodDisruptionBudget', 'Service', 'ServiceAccount'].sort(),
    );
    for (const o of objs) expect(o.metadata.namespace, `${o.kind} ${o.metadata.name}`).toBe('pk-mcp');
    const cm = byKind(objs, 'ConfigMap')[0]!;
    expect(cm.data!.DATABASE_URL).toBe('postgres://pkmcp@postgres.db:5432/pkmcp');
    expect(cm.data!.REDIS_URL).toBe('redis://redis.db:6379');
    expect(cm.data!.NEO4J_URI).toBe('bolt://neo4j.db:7687');
    expect(named(objs, 'Deployment', '-api').spec.template.spec.containers[0].image).toBe('registry.example.com/pk-mcp:0.1.0');
  });

  it('runs every pod non-root and read-only, with probes, limits, secrets as files, and the migration as a hook', () => {
    const objs = parse(render(FULL_VALUES).yaml!);
    validate(render(FULL_VALUES).yaml!.split('\n---\n').filter((d) => !d.includes('keda.sh/')).join('\n---\n'));
    const workloads = [named(objs, 'Deployment', '-api'), named(objs, 'Deployment', '-worker'), named(objs, 'Job', '-migrate')];
    for (const w of workloads) {
      const pod = w.spec.template.spec;
      expect(pod.securityContext.runAsNonRoot, w.metadata.name).toBe(true);
      expect(pod.securityContext.runAsUser).toBe(10001);
      expect(pod.securityContext.seccompProfile.type).toBe('RuntimeDefault');
      expect(pod.automountServiceAccountToken).toBe(false);
      for (const c of pod.containers) {
        expect(c.image).toBe(`registry.example.com/pk-mcp@${DIGEST}`);
        expect(c.securityContext.readOnlyRootFilesystem).toBe(true);
        expect(c.securityContext.allowPrivilegeEscalation).toBe(false);
        expect(c.securityContext.capabilities.drop).toEqual(['ALL']);
        expect(c.resources.requests.cpu && c.resources.requests.memory && c.resources.limits.cpu && c.resources.limits.memory, w.metadata.name).toBeTruthy();
        // Every *_FILE names a file inside a volume mounted read-only from a Secret.
        const mounts = new Map<string, { name: string; readOnly?: boolean }>(c.volumeMounts.map((m: { mountPath: string; name: string; readOnly?: boolean }) => [m.mountPath, m]));
        const secretVolumes = new Set(pod.volumes.filter((v: { secret?: unknown }) => v.secret).map((v: { name: string }) => v.name));
        for (const e of (c.env ?? []).filter((x: { name: string }) => x.name.endsWith('_FILE'))) {
          const mount = mounts.get(path.dirname(e.value));
          expect(mount, `${w.metadata.name} ${e.name}`).toBeDefined();
          expect(secretVolumes.has(mount!.name)).toBe(true);
          expect(mount!.readOnly).toBe(true);
        }
        expect(mounts.has('/tmp'), `${w.metadata.name} /tmp`).toBe(true);
      }
    }
    const api = named(objs, 'Deployment', '-api').spec.template.spec.containers[0];
    expect(api.args).toEqual(['api']);
    expect(api.livenessProbe.httpGet.path).toBe('/health');
    expect(api.readinessProbe.httpGet.path).toBe('/ready');
    const worker = named(objs, 'Deployment', '-worker');
    expect(worker.spec.template.spec.containers[0].args).toEqual(['worker']);
    expect(worker.spec.replicas, 'KEDA owns the worker replica count').toBeUndefined();
    const apiMounts = api.volumeMounts.map((m: { mountPath: string }) => m.mountPath);
    for (const p of ['/data/workspaces', '/data/backups', '/data/secrets']) expect(apiMounts).toContain(p);
    const backups = named(objs, 'Deployment', '-api').spec.template.spec.volumes.find((v: { name: string }) => v.name === 'backups');
    expect(backups.persistentVolumeClaim.claimName).toBe('pk-mcp-backups');

    const job = named(objs, 'Job', '-migrate');
    expect(job.metadata.annotations!['helm.sh/hook']).toBe('pre-install,pre-upgrade');
    expect(job.spec.template.spec.containers[0].args).toEqual(['migrate']);

    // No secret value in the ConfigMap; the passwords come only from Secrets.
    const cm = byKind(objs, 'ConfigMap')[0]!;
    for (const [k, v] of Object.entries(cm.data!)) {
      expect(k).not.toMatch(/PASSWORD$|TOKEN$|SECRET$|API_KEY$/);
      if (/^[a-z]+:\/\//.test(v)) expect(new URL(v).password, k).toBe('');
    }

    expect(byKind(objs, 'PodDisruptionBudget').length).toBe(2);
    expect(byKind(objs, 'NetworkPolicy').length).toBe(3);
    expect(named(objs, 'Ingress', 'pk-mcp').spec.rules[0].http.paths[0].backend.service.port.name).toBe('http');
    expect(named(objs, 'HorizontalPodAutoscaler', '-api').spec.scaleTargetRef.name).toMatch(/-api$/);

    // KEDA scales the workers on the BullMQ wait lists of the queues that fan out.
    const so = named(objs, 'ScaledObject', '-worker');
    expect(so.spec.scaleTargetRef.name).toBe(worker.metadata.name);
    expect(so.spec.triggers.map((t: { metadata: { listName: string } }) => t.metadata.listName)).toEqual(['pkmcp:index:wait', 'pkmcp:embed:wait', 'pkmcp:graph:wait']);
    expect(so.spec.triggers[0].type).toBe('redis');
    expect(so.spec.triggers[0].metadata.address).toBe('redis.stores.svc.cluster.local:6379');
    expect(named(objs, 'TriggerAuthentication', '-redis').spec.secretTargetRef[0].name).toBe('pk-mcp-redis');
  });

  it('Sentinel and Cluster settings reach the config; on a Cluster the queue prefix must carry a hash tag', () => {
    const sentinel = parse(render(`stores: { redis: { mode: sentinel, sentinels: ["s0.redis:26379", "s1.redis:26379"], masterName: pkmaster } }\nworker: { keda: { enabled: true } }`).yaml!);
    const cm = byKind(sentinel, 'ConfigMap')[0]!;
    expect(cm.data!.REDIS_MODE).toBe('sentinel');
    expect(cm.data!.REDIS_SENTINELS).toBe('s0.redis:26379,s1.redis:26379');
    expect(cm.data!.REDIS_SENTINEL_MASTER).toBe('pkmaster');
    expect(cm.data!.REDIS_URL).toBeUndefined();
    expect(named(sentinel, 'ScaledObject', '-worker').spec.triggers[0].type).toBe('redis-sentinel');

    const refused = render(`stores: { redis: { mode: cluster, nodes: ["n0:6379"] } }`);
    expect(refused.yaml).toBeUndefined();
    expect(refused.error).toContain('stores.redis.queuePrefix "pkmcp" has no hash tag');
    const cluster = parse(render(`stores: { redis: { mode: cluster, nodes: ["n0:6379", "n1:6379"], queuePrefix: "{pkmcp}" } }\nworker: { keda: { enabled: true } }`).yaml!);
    expect(byKind(cluster, 'ConfigMap')[0]!.data!.REDIS_CLUSTER_NODES).toBe('n0:6379,n1:6379');
    expect(byKind(cluster, 'ConfigMap')[0]!.data!.QUEUE_PREFIX).toBe('{pkmcp}');
    const so = named(cluster, 'ScaledObject', '-worker');
    expect(so.spec.triggers[0].type).toBe('redis-cluster');
    expect(so.spec.triggers[0].metadata.listName).toBe('{pkmcp}:index:wait');
  });

  it('refuses settings that cannot work, naming the value to set', () => {
    expect(render('stores: { postgres: { existingSecret: "" } }').error).toContain('stores.postgres.existingSecret is required');
    expect(render('stores: { redis: { mode: replica } }').error).toContain('stores.redis.mode must be standalone, sentinel or cluster, not "replica"');
    expect(render('stores: { redis: { mode: sentinel } }').error).toContain('stores.redis.mode=sentinel needs stores.redis.sentinels');
  });

  it('passes checkov, with only the findings the chart annotates as kept on purpose', () => {
    const dir = tmp();
    mkdirSync(path.join(dir, 'm'));
    writeFileSync(path.join(dir, 'm', 'manifests.yaml'), render(FULL_VALUES).yaml!);
    const r = runTool('checkov', ['-d', path.join(dir, 'm'), '--framework', 'kubernetes', '--compact', '-o', 'json'], { env: { HOME: dir } });
    const report = JSON.parse(r.stdout) as { summary: { failed: number; passed: number }; results: { failed_checks: Array<{ check_id: string; resource: string }>; skipped_checks?: Array<{ check_id: string; resource: string }> } };
    expect(report.results.failed_checks.map((f) => `${f.check_id} ${f.resource}`)).toEqual([]);
    expect(report.summary.passed).toBeGreaterThan(200);
    const skipped = report.results.skipped_checks ?? [];
    // CKV_K8S_35 only because FULL_VALUES sets the OpenAI and Git token Secrets, which reach the env.
    expect(new Set(skipped.map((s) => s.check_id))).toEqual(new Set(['CKV_K8S_15', 'CKV_K8S_8', 'CKV_K8S_9', 'CKV_K8S_35']));
    // Each kept finding carries its reason in the workload's own annotation (checkov.io/skipN: "<id>=<reason>").
    const objs = parse(render(FULL_VALUES).yaml!);
    for (const s of skipped) {
      const [kind, , name] = s.resource.split('.');
      const obj = objs.find((o) => o.kind === kind && o.metadata.name === name)!;
      const reason = Object.entries(obj.metadata.annotations ?? {})
        .filter(([k]) => k.startsWith('checkov.io/skip'))
        .map(([, v]) => v)
        .find((v) => v.startsWith(`${s.check_id}=`));
      expect(reason?.length ?? 0, `${s.check_id} ${s.resource} has a reason`).toBeGreaterThan(60);
    }
    // The probe findings are kept for the worker only: the API has both probes.
    expect(skipped.filter((s) => ['CKV_K8S_8', 'CKV_K8S_9'].includes(s.check_id)).every((s) => s.resource.includes('-worker'))).toBe(true);
  });
});
