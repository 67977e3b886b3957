import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';

/** One Kubernetes object, as much of it as the deploy tests read. */
export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  data?: Record<string, string>;
  spec?: Record<string, unknown>;
  [key: string]: unknown;
}

interface Kustomization {
  namespace?: string;
  resources?: string[];
  components?: string[];
  configMapGenerator?: Generator[];
  secretGenerator?: Generator[];
}

interface Generator {
  name: string;
  behavior?: 'create' | 'merge' | 'replace';
  literals?: string[];
}

function readYamlDocs(path: string): K8sObject[] {
  return parseAllDocuments(readFileSync(path, 'utf8'))
    .map((d) => d.toJS() as K8sObject | null)
    .filter((o): o is K8sObject => o !== null);
}

const literalsToData = (literals: string[] = []) =>
  Object.fromEntries(
    literals.map((l) => {
      const at = l.indexOf('=');
      return [l.slice(0, at), l.slice(at + 1)];
    }),
  );

/**
 * What `kustomize build dir` gives for the features these manifests use (resources, components,
 * namespace, ConfigMap and Secret generators with literals; no name hashes, no images, no labels),
 * for machines without kubectl. kubernetes.test.ts checks it against `kubectl kustomize` where that runs.
 */
export function buildKustomization(dir: string): K8sObject[] {
  const k = readYamlDocs(join(dir, 'kustomization.yaml'))[0] as unknown as Kustomization;
  let objects: K8sObject[] = [];
  for (const entry of k.resources ?? []) {
    const path = join(dir, entry);
    objects.push(...(statSync(path).isDirectory() ? buildKustomization(path) : readYamlDocs(path)));
  }
  for (const entry of k.components ?? []) objects.push(...buildKustomization(join(dir, entry)));
  for (const [kind, generators] of [
    ['ConfigMap', k.configMapGenerator],
    ['Secret', k.secretGenerator],
  ] as const) {
    for (const g of generators ?? []) {
      const data = literalsToData(g.literals);
      const existing = objects.find((o) => o.kind === kind && o.metadata.name === g.name);
      if (g.behavior === 'merge' || g.behavior === 'replace') {
        if (!existing) throw new Error(`${dir}: ${kind} ${g.name} to ${g.behavior} does not exist`);
        existing.data = g.behavior === 'merge' ? { ...existing.data, ...data } : data;
      } else {
        if (existing) throw new Error(`${dir}: ${kind} ${g.name} generated twice`);
        objects.push({ apiVersion: 'v1', kind, metadata: { name: g.name }, data });
      }
    }
  }
  if (k.namespace) {
    objects = objects.map((o) =>
      o.kind === 'Namespace' ? o : { ...o, metadata: { ...o.metadata, namespace: k.namespace as string } },
    );
  }
  return objects;
}

/** `kubectl kustomize dir` (Secrets' data decoded), or undefined when kubectl is not installed. */
export function kubectlKustomize(dir: string): K8sObject[] | undefined {
  if (!['/usr/bin/kubectl', '/usr/local/bin/kubectl'].some((p) => existsSync(p))) return undefined;
  const out = execFileSync('kubectl', ['kustomize', dir], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return parseAllDocuments(out)
    .map((d) => d.toJS() as K8sObject)
    .map((o) =>
      o.kind === 'Secret' && o.data
        ? {
            ...o,
            data: Object.fromEntries(
              Object.entries(o.data).map(([key, v]) => [key, Buffer.from(v, 'base64').toString('utf8')]),
            ),
          }
        : o,
    );
}
