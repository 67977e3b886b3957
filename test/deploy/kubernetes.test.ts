import { join } from 'node:path';
import { apiConfigSchema } from '@tuneline/api';
import { QUEUE_NAMES, queues, SERVICES } from '@tuneline/contracts';
import { providerEnvSchema } from '@tuneline/provider';
import { baseConfigSchema } from '@tuneline/runtime';
import { describe, expect, it } from 'vitest';
import type { z } from 'zod';
import { root } from './files.ts';
import { buildKustomization, type K8sObject, kubectlKustomize } from './kustomize.ts';

// deploy/kubernetes: the example overlays rendered (kubectl kustomize where installed, else the YAML
// resolved by kustomize.ts) and checked against the queue catalogue and the config schemas, so a new
// queue, worker or setting that the manifests do not follow fails here.

const dir = join(root, 'deploy', 'kubernetes');
const variants = { keda: 'overlays/example-keda', hpa: 'overlays/example-hpa' } as const;

interface Container {
  name: string;
  image: string;
  env?: { name: string; value?: string; valueFrom?: unknown }[];
  envFrom?: { configMapRef?: { name: string }; secretRef?: { name: string } }[];
  ports?: { name?: string; containerPort: number }[];
  readinessProbe?: { httpGet?: { path: string; port: string | number } };
  livenessProbe?: { httpGet?: { path: string; port: string | number } };
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
}

interface PodSpec {
  terminationGracePeriodSeconds?: number;
  containers: Container[];
}

const podSpec = (o: K8sObject): PodSpec =>
  (o.spec as { template: { spec: PodSpec } } | undefined)?.template.spec as PodSpec;

function render(variant: keyof typeof variants): K8sObject[] {
  return kubectlKustomize(join(dir, variants[variant])) ?? buildKustomization(join(dir, variants[variant]));
}

const find = (objects: K8sObject[], kind: string, name: string) =>
  objects.find((o) => o.kind === kind && o.metadata.name === name);

/** Every variable a container gets, with where it comes from; unknown ConfigMaps and Secrets throw. */
function containerEnv(objects: K8sObject[], c: Container): Map<string, { value: string; from: string }> {
  const env = new Map<string, { value: string; from: string }>();
  for (const ref of c.envFrom ?? []) {
    const [kind, name] = ref.configMapRef
      ? ['ConfigMap', ref.configMapRef.name]
      : ['Secret', ref.secretRef?.name];
    const source = find(objects, kind as string, name as string);
    if (!source)
      throw new Error(`${c.name}: envFrom names ${kind} ${name}, which the deployment does not create`);
    for (const [key, value] of Object.entries(source.data ?? {}))
      env.set(key, { value, from: `${kind} ${name}` });
  }
  for (const e of c.env ?? []) env.set(e.name, { value: e.value ?? 'from-secret', from: 'env' });
  return env;
}

/** The variables each process reads: its config schema (the API also reads the provider's and the catalogue's). */
async function schemaOf(service: string): Promise<z.ZodObject> {
  if (service === 'api') return apiConfigSchema.extend(providerEnvSchema.shape) as unknown as z.ZodObject;
  const mod = (await import(`@tuneline/${service}/config`)) as { configSchema: z.ZodObject };
  return mod.configSchema;
}
const EXTRA_NAMES: Record<string, string[]> = { api: ['MODEL_CATALOGUE_FILE'], migrate: ['DATABASE_URL'] };

const workerQueues = (service: string) => QUEUE_NAMES.filter((q) => queues[q].consumer === service);

describe.each(Object.keys(variants) as (keyof typeof variants)[])('deploy/kubernetes (%s)', (variant) => {
  const objects = render(variant);
  const common = find(objects, 'ConfigMap', 'tuneline-common')?.data ?? {};
  const prefix = common.QUEUE_PREFIX ?? 'tuneline';

  it('renders the same objects from the YAML alone as kubectl kustomize does', () => {
    const viaKubectl = kubectlKustomize(join(dir, variants[variant]));
    const ids = (list: K8sObject[]) =>
      list.map((o) => `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`).sort();
    const resolved = buildKustomization(join(dir, variants[variant]));
    if (viaKubectl) {
      expect(ids(resolved)).toEqual(ids(viaKubectl));
      for (const o of viaKubectl.filter((x) => x.kind === 'ConfigMap' || x.kind === 'Secret')) {
        expect(find(resolved, o.kind, o.metadata.name)?.data, `${o.kind} ${o.metadata.name}`).toEqual(
          o.data ?? {},
        );
      }
    }
    expect(ids(resolved).length).toBeGreaterThan(SERVICES.length * 2);
  });

  it('runs every worker of the queue catalogue and the API with both probes, resources and a PDB', () => {
    for (const service of [...SERVICES, 'api']) {
      const deployment = find(objects, 'Deployment', service);
      expect(deployment, `Deployment ${service}`).toBeDefined();
      const pod = podSpec(deployment as K8sObject);
      const container = pod.containers.find((c) => c.name === service) as Container;
      expect(container, `${service}: container named ${service}`).toBeDefined();
      expect(container.image).toMatch(new RegExp(`/tuneline/${service}:`));
      const env = containerEnv(objects, container);
      const port = Number(env.get(service === 'api' ? 'API_PORT' : 'HEALTH_PORT')?.value);
      expect(port, `${service}: its health port is set`).toBeGreaterThan(0);
      const portOf = (p: string | number | undefined) =>
        typeof p === 'number' ? p : container.ports?.find((x) => x.name === p)?.containerPort;
      expect(container.readinessProbe?.httpGet?.path, service).toBe('/readyz');
      expect(portOf(container.readinessProbe?.httpGet?.port), service).toBe(port);
      expect(container.livenessProbe?.httpGet?.path, service).toBe('/livez');
      expect(portOf(container.livenessProbe?.httpGet?.port), service).toBe(port);
      for (const kind of ['requests', 'limits'] as const) {
        expect(container.resources?.[kind]?.cpu, `${service} ${kind}.cpu`).toBeTruthy();
        expect(container.resources?.[kind]?.memory, `${service} ${kind}.memory`).toBeTruthy();
      }
      const labels = ((deployment as K8sObject).spec as { selector: { matchLabels: Record<string, string> } })
        .selector.matchLabels;
      const pdb = objects.find(
        (o) =>
          o.kind === 'PodDisruptionBudget' &&
          JSON.stringify((o.spec as { selector?: { matchLabels?: unknown } }).selector?.matchLabels) ===
            JSON.stringify(labels),
      );
      expect(pdb, `${service}: a PodDisruptionBudget selecting its pods`).toBeDefined();
    }
    // No worker Deployment that the catalogue does not know.
    const workers = objects.filter(
      (o) => o.kind === 'Deployment' && o.metadata.labels?.['app.kubernetes.io/component'] === 'worker',
    );
    expect(workers.map((w) => w.metadata.name).sort()).toEqual([...SERVICES].sort());
    expect(find(objects, 'Job', 'tuneline-migrate'), 'the migrations Job').toBeDefined();
  });

  it('gives each process only variables its config schema reads, and values that parse', async () => {
    const pods: [string, PodSpec][] = objects
      .filter((o) => o.kind === 'Deployment' || o.kind === 'Job')
      .map((o) => [o.kind === 'Job' ? 'migrate' : o.metadata.name, podSpec(o)]);
    for (const [service, pod] of pods) {
      for (const container of pod.containers) {
        const env = containerEnv(objects, container);
        const schema = service === 'migrate' ? undefined : await schemaOf(service);
        const known = new Set([...Object.keys(schema?.shape ?? {}), ...(EXTRA_NAMES[service] ?? [])]);
        for (const [name, { from }] of env) {
          expect(known.has(name), `${service}: ${name} (${from}) is not in its config schema`).toBe(true);
        }
        if (schema) {
          const values = Object.fromEntries([...env].map(([name, { value }]) => [name, value]));
          const parsed = schema.safeParse(values);
          expect(parsed.success, `${service}: ${parsed.error?.message}`).toBe(true);
        }
      }
    }
  });

  it('lets SIGTERM drain: the grace period exceeds SHUTDOWN_TIMEOUT_MS in every Deployment', () => {
    const fallback = baseConfigSchema.shape.SHUTDOWN_TIMEOUT_MS.parse(undefined);
    for (const deployment of objects.filter((o) => o.kind === 'Deployment')) {
      const pod = podSpec(deployment);
      for (const container of pod.containers) {
        const shutdownMs = Number(
          containerEnv(objects, container).get('SHUTDOWN_TIMEOUT_MS')?.value ?? fallback,
        );
        expect(
          (pod.terminationGracePeriodSeconds ?? 30) * 1000,
          `${deployment.metadata.name}: terminationGracePeriodSeconds vs SHUTDOWN_TIMEOUT_MS ${shutdownMs}`,
        ).toBeGreaterThan(shutdownMs);
      }
    }
  });

  if (variant === 'keda') {
    it("scales each worker on its own queue's BullMQ wait list, and nothing else on those workers", () => {
      const scaled = objects.filter((o) => o.kind === 'ScaledObject');
      for (const service of SERVICES) {
        const so = scaled.find(
          (o) => (o.spec as { scaleTargetRef: { name: string } }).scaleTargetRef.name === service,
        );
        expect(so, `${service}: a ScaledObject (components/keda/scaledobjects.yaml)`).toBeDefined();
        const spec = so?.spec as {
          minReplicaCount: number;
          maxReplicaCount: number;
          triggers: {
            type: string;
            metadata: Record<string, string>;
            authenticationRef?: { name: string };
          }[];
        };
        expect(spec.minReplicaCount, `${service}: recovery timers need a replica`).toBeGreaterThanOrEqual(1);
        expect(spec.maxReplicaCount).toBeGreaterThanOrEqual(spec.minReplicaCount);
        const lists = spec.triggers.filter((t) => t.type === 'redis').map((t) => t.metadata.listName);
        expect(lists.sort(), service).toEqual(
          workerQueues(service)
            .map((q) => `${prefix}:${q}:wait`)
            .sort(),
        );
        for (const t of spec.triggers) {
          expect(Number(t.metadata.listLength), service).toBeGreaterThan(0);
          const auth = find(objects, 'TriggerAuthentication', t.authenticationRef?.name ?? '');
          expect(auth, `${service}: its TriggerAuthentication`).toBeDefined();
          for (const ref of ((auth as K8sObject).spec as { secretTargetRef: { name: string; key: string }[] })
            .secretTargetRef) {
            expect(find(objects, 'Secret', ref.name)?.data, `Secret ${ref.name}`).toHaveProperty(ref.key);
          }
        }
      }
      const targets = scaled.map((o) => (o.spec as { scaleTargetRef: { name: string } }).scaleTargetRef.name);
      for (const t of targets)
        expect(find(objects, 'Deployment', t), `ScaledObject target ${t}`).toBeDefined();
      // KEDA makes its own HPA per ScaledObject: a second one on the same worker would fight it.
      const hpaTargets = objects
        .filter((o) => o.kind === 'HorizontalPodAutoscaler')
        .map((o) => (o.spec as { scaleTargetRef: { name: string } }).scaleTargetRef.name);
      for (const t of hpaTargets) expect(targets, `HPA on ${t}`).not.toContain(t);
    });
  } else {
    it('scales each worker with a CPU HPA and uses no KEDA object', () => {
      expect(objects.filter((o) => o.apiVersion.startsWith('keda.sh/'))).toEqual([]);
      for (const service of [...SERVICES, 'api']) {
        const hpa = objects.find(
          (o) =>
            o.kind === 'HorizontalPodAutoscaler' &&
            (o.spec as { scaleTargetRef: { name: string } }).scaleTargetRef.name === service,
        );
        expect(hpa, `${service}: an HPA (components/hpa/hpas.yaml)`).toBeDefined();
        const spec = hpa?.spec as { minReplicas: number; maxReplicas: number };
        expect(spec.minReplicas).toBeGreaterThanOrEqual(1);
        expect(spec.maxReplicas).toBeGreaterThanOrEqual(spec.minReplicas);
      }
    });
  }
});
