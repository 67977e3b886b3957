import { z } from 'zod';
import type { RegisteredRoute } from './http.ts';

/**
 * Builds the OpenAPI 3.1 document from the route table's zod schemas (JSON Schema 2020-12, which 3.1
 * uses as is). Named schemas (`.meta({id})`) and zod's `$defs` are hoisted into components.schemas and
 * every `$ref` rewritten to point there, so each one resolves within the document.
 */

type Json = Record<string, unknown>;

const SECURITY = { license: [{ licenseKey: [] }], admin: [{ adminKey: [] }], none: [] } as const;

export function buildOpenApiDocument(
  routes: readonly RegisteredRoute[],
  info: { title: string; version: string },
) {
  const components: Record<string, Json> = {};
  let anonymous = 0;

  const hoist = (schema: z.ZodType, io: 'input' | 'output', fallbackName: string): Json => {
    const json = z.toJSONSchema(schema, { io, unrepresentable: 'any', reused: 'inline' }) as Json;
    const rootId = typeof json.id === 'string' ? json.id : undefined;
    const defs = (json.$defs ?? {}) as Record<string, Json>;
    delete json.$defs;
    delete json.$schema;
    delete json.id;
    const names = new Map<string, string>();
    for (const key of Object.keys(defs))
      names.set(key, /^schema\d+$/.test(key) ? `Anonymous${++anonymous}` : key);
    const rootName = rootId ?? (Object.keys(defs).length ? `${fallbackName}` : undefined);
    const rewrite = (node: unknown): unknown => {
      if (Array.isArray(node)) return node.map(rewrite);
      if (!node || typeof node !== 'object') return node;
      const out: Json = {};
      for (const [k, v] of Object.entries(node as Json)) {
        if (k === '$ref' && typeof v === 'string') {
          if (v === '#') out[k] = `#/components/schemas/${rootName}`;
          else if (v.startsWith('#/$defs/'))
            out[k] = `#/components/schemas/${names.get(v.slice(8)) ?? v.slice(8)}`;
          else out[k] = v;
        } else if (k === 'id' && typeof v === 'string') {
          // zod's registry id is not a JSON Schema keyword.
        } else out[k] = rewrite(v);
      }
      return out;
    };
    for (const [key, def] of Object.entries(defs))
      components[names.get(key) as string] = rewrite(def) as Json;
    const root = rewrite(json) as Json;
    if (rootName) {
      components[rootName] = root;
      return { $ref: `#/components/schemas/${rootName}` };
    }
    return root;
  };

  const paths: Record<string, Json> = {};
  for (const route of routes) {
    const path = route.url.replace(/:([A-Za-z_]+)/g, '{$1}');
    const opName = `${route.method.toLowerCase()}${path.replace(/[{}]/g, '').replace(/[^A-Za-z0-9]+(.)?/g, (_m, c: string | undefined) => (c ? c.toUpperCase() : ''))}`;
    const parameters: Json[] = [];
    for (const [where, schema] of [
      ['path', route.params],
      ['query', route.query],
    ] as const) {
      if (!schema) continue;
      const json = hoist(schema, 'input', `${opName}_${where}`);
      const props = (json.properties ?? {}) as Record<string, Json>;
      const required = new Set((json.required ?? []) as string[]);
      for (const [name, s] of Object.entries(props)) {
        parameters.push({ name, in: where, required: where === 'path' || required.has(name), schema: s });
      }
    }
    const responses: Json = {};
    for (const [status, spec] of Object.entries(route.responses)) {
      responses[status] = {
        description: spec.description,
        ...(spec.schema
          ? {
              content: {
                [spec.contentType ?? 'application/json']: {
                  schema: hoist(spec.schema, 'output', `${opName}_${status}`),
                },
              },
            }
          : spec.contentType
            ? { content: { [spec.contentType]: { schema: { type: 'string' } } } }
            : {}),
      };
    }
    const operation: Json = {
      operationId: opName,
      summary: route.summary,
      tags: [route.tag],
      security: SECURITY[route.auth],
      ...(parameters.length ? { parameters } : {}),
      ...(route.body
        ? {
            requestBody: {
              required: true,
              content: { 'application/json': { schema: hoist(route.body, 'input', `${opName}_body`) } },
            },
          }
        : {}),
      responses,
    };
    paths[path] = { ...(paths[path] ?? {}), [route.method.toLowerCase()]: operation };
  }

  return {
    openapi: '3.1.0',
    info: {
      ...info,
      description:
        'Tuneline: fine-tune a document-capture model on validated documents. License keys and admin keys are sent as `Authorization: Bearer <key>`. Credits are integers sent as decimal strings.',
    },
    servers: [{ url: '/' }],
    paths,
    components: {
      schemas: components,
      securitySchemes: {
        licenseKey: { type: 'http', scheme: 'bearer', description: 'a license API key' },
        adminKey: {
          type: 'http',
          scheme: 'bearer',
          description: 'the admin key (ADMIN_API_KEY or an admin api_keys row)',
        },
      },
    },
  };
}
