import { describe, expect } from 'vitest';
import { makeDataset, makeFineTune, makeLicense } from './fixtures.ts';
import { type AnyJson, type ApiContext, it } from './support.ts';

/** The OpenAPI document: complete, resolvable, and true to the answers. */

let { t, call } = {} as ApiContext;
it.beforeAll(({ api }) => {
  ({ t, call } = api);
});

describe('OpenAPI document', () => {
  const EXPECTED = [
    'POST /v1/fine-tune-requests',
    'GET /v1/fine-tune-requests/{requestId}',
    'GET /v1/datasets',
    'GET /v1/datasets/{id}',
    'POST /v1/datasets/{id}/upload',
    'POST /v1/datasets/{id}/fine-tunes',
    'GET /v1/fine-tunes',
    'GET /v1/fine-tunes/{id}',
    'POST /v1/fine-tunes/{id}/cancel',
    'POST /v1/fine-tunes/{id}/activate',
    'POST /v1/fine-tunes/{id}/deactivate',
    'POST /v1/fine-tunes/{id}/discard',
    'GET /v1/fine-tunes/{id}/evaluation',
    'GET /v1/models/active',
    'POST /v1/chat/completions',
    'GET /v1/license',
    'GET /v1/credits',
    'GET /v1/credits/usage',
    'GET /v1/credits/usage/models',
    'GET /v1/pricing/estimate',
    'POST /v1/admin/licenses',
    'POST /v1/admin/licenses/{id}/keys',
    'POST /v1/admin/licenses/{id}/credits',
    'POST /v1/admin/licenses/{id}/provider',
    'POST /v1/documents',
    'DELETE /v1/documents/{configuration}/{documentId}',
    'GET /v1/documents',
    'POST /v1/training-profiles',
    'GET /v1/training-profiles',
    'GET /v1/training-profiles/{name}',
    'POST /v1/training-profiles/{name}/retrain',
    'POST /v1/training-profiles/{name}/versions/{version}/promote',
    'GET /v1/dead-letters',
    'GET /v1/admin/dead-letters',
    'POST /v1/admin/dead-letters/{id}/retry',
    'POST /v1/aliases/{name}',
    'POST /v1/aliases/{name}/rollback',
    'GET /v1/aliases',
    'GET /v1/aliases/{name}',
    'GET /v1/lifecycle/notices',
    'GET /v1/models/base',
  ];

  it('is OpenAPI 3.1 with every route, operation ids, responses and resolvable refs', async () => {
    const res = await call('GET', '/openapi.json');
    expect(res.status).toBe(200);
    const doc = res.json;
    expect(doc.openapi).toBe('3.1.0');
    expect(doc.info.title).toBeTruthy();
    const operations: string[] = [];
    const ids = new Set<string>();
    for (const [path, item] of Object.entries<Record<string, AnyJson>>(doc.paths)) {
      for (const [method, op] of Object.entries<AnyJson>(item)) {
        operations.push(`${method.toUpperCase()} ${path}`);
        expect(op.operationId, `${method} ${path}`).toBeTruthy();
        expect(ids.has(op.operationId)).toBe(false);
        ids.add(op.operationId);
        expect(Object.keys(op.responses).length).toBeGreaterThan(0);
        for (const p of op.parameters ?? []) expect(['path', 'query']).toContain(p.in);
        // Path templates and path parameters agree.
        const templated = [...path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]);
        const declared = (op.parameters ?? [])
          .filter((p: { in: string }) => p.in === 'path')
          .map((p: { name: string }) => p.name);
        expect(declared.sort()).toEqual(templated.sort());
        if (op.security.length)
          expect(Object.keys(doc.components.securitySchemes)).toContain(Object.keys(op.security[0])[0]);
      }
    }
    expect(operations.sort()).toEqual([...EXPECTED].sort());

    // Every $ref points at something in the document; no zod-only keywords leak.
    const refs: string[] = [];
    const walk = (node: unknown) => {
      if (Array.isArray(node)) node.forEach(walk);
      else if (node && typeof node === 'object') {
        for (const [k, v] of Object.entries(node)) {
          if (k === '$ref') refs.push(v as string);
          else walk(v);
        }
      }
    };
    walk(doc);
    expect(refs.length).toBeGreaterThan(10);
    for (const ref of refs) {
      expect(ref.startsWith('#/')).toBe(true);
      let target: AnyJson = doc;
      for (const part of ref.slice(2).split('/')) target = target?.[part];
      expect(target, ref).toBeTypeOf('object');
    }
    expect(Object.keys(doc.components.schemas)).toEqual(
      expect.arrayContaining([
        'FineTuneRequest',
        'Dataset',
        'FineTune',
        'FineTuneDetail',
        'Error',
        'UsageLog',
        'ChatCompletion',
      ]),
    );
    expect(JSON.stringify(doc)).not.toMatch(/"\$defs"|"\$schema"/);
  });

  it('matches what the API answers: a dataset response validates against its schema', async () => {
    const { default: Ajv2020 } = await import('ajv/dist/2020.js');
    const ajv = new (Ajv2020 as unknown as new (o: object) => AnyJson)({
      strict: false,
      validateFormats: false,
    });
    const doc = (await call('GET', '/openapi.json')).json;
    const owner = await makeLicense(t.db, 'lic-openapi');
    await makeFineTune(t.db, owner.id, await makeDataset(t.db, owner.id, 'uploaded'), { withHistory: true });
    ajv.addSchema({ $id: 'doc', components: doc.components }, 'doc');
    const validate = ajv.getSchema('doc#/components/schemas/DatasetList');
    const list = await call('GET', '/v1/datasets', owner.key);
    expect(list.json.data).toHaveLength(1);
    expect(validate(list.json), JSON.stringify(validate.errors)).toBe(true);
    const detail = ajv.getSchema('doc#/components/schemas/FineTuneDetail');
    const fts = await call('GET', '/v1/fine-tunes', owner.key);
    const one = await call('GET', `/v1/fine-tunes/${fts.json.data[0].id}`, owner.key);
    expect(one.json.checkpoints).toHaveLength(4);
    expect(detail(one.json), JSON.stringify(detail.errors)).toBe(true);
    expect(detail({ ...one.json, status: 3 })).toBe(false);
  });
});
