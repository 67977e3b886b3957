// Helpers shared by the simulator tests: a recording simulator, the OpenAPI conformance checker, and
// training-file builders.
import { existsSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  type RecordedResponse,
  type RunningSimulator,
  type SimulatorOptions,
  startSimulator,
} from '@tuneline/simulator';
import type { ErrorObject } from 'ajv';
import Ajv2020Module from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import OpenAI, { toFile } from 'openai';
import { afterAll, beforeAll } from 'vitest';
import { parse } from 'yaml';

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
/** OpenAI's OpenAPI document, vendored with its licence (vendor/openai/README.md names the version). */
export const openApiPath = join(repoRoot, 'vendor', 'openai', 'openapi.yaml');

export interface RecordingSimulator extends RunningSimulator {
  recorded: RecordedResponse[];
}

export async function startRecordingSimulator(opts: SimulatorOptions = {}): Promise<RecordingSimulator> {
  const recorded: RecordedResponse[] = [];
  const sim = await startSimulator({ speed: 1000, ...opts, onResponse: (r) => recorded.push(r) });
  return Object.assign(sim, { recorded });
}

/** The official SDK on a simulator, its own retries off so that a test sees every answer. */
export function sdkClient(sim: { url: string }, apiKey = 'sk-sim'): OpenAI {
  return new OpenAI({ baseURL: sim.url, apiKey, maxRetries: 0 });
}

/** Runs `use` on a recording simulator of its own and the SDK on it; the simulator is closed afterwards. */
export async function withSimulator<T>(
  opts: SimulatorOptions,
  use: (sim: RecordingSimulator, client: OpenAI) => Promise<T>,
): Promise<T> {
  const sim = await startRecordingSimulator(opts);
  try {
    return await use(sim, sdkClient(sim));
  } finally {
    await sim.close();
  }
}

/**
 * A recording simulator for this file's tests, with `client`, the SDK on it: started before the first
 * test, closed after the last. The object returned is filled in when it starts.
 */
export function simulatorForFile(opts: SimulatorOptions): RecordingSimulator & { client: OpenAI } {
  const handle = {} as RecordingSimulator & { client: OpenAI };
  beforeAll(async () => {
    const sim = await startRecordingSimulator(opts);
    Object.assign(handle, sim, { client: sdkClient(sim) });
  });
  afterAll(async () => {
    await handle.close?.();
  });
  return handle;
}

/** Uploads a fine-tuning file (default: 12 invoice examples) and waits until it is processed; its id. */
export async function uploadTrainingFile(
  client: OpenAI,
  content = toJsonl(invoiceExamples(12)),
  filename = 't.jsonl',
): Promise<string> {
  const file = await client.files.create({
    file: await toFile(Buffer.from(content), filename),
    purpose: 'fine-tune',
  });
  await waitForFileProcessed(client, file.id);
  return file.id;
}

// ---- OpenAPI conformance ----

type Json = Record<string, unknown>;

/**
 * The published document keeps OpenAPI 3.0 habits a 2020-12 validator misreads: boolean
 * `exclusiveMinimum`/`exclusiveMaximum` beside `minimum`/`maximum`, and `nullable: true`.
 */
function normalise(node: unknown): void {
  if (Array.isArray(node)) {
    for (const item of node) normalise(item);
    return;
  }
  if (!node || typeof node !== 'object') return;
  const o = node as Json;
  for (const [flag, bound] of [
    ['exclusiveMinimum', 'minimum'],
    ['exclusiveMaximum', 'maximum'],
  ] as const) {
    if (o[flag] === true) {
      o[flag] = o[bound];
      delete o[bound];
    } else if (o[flag] === false) delete o[flag];
  }
  if (o.nullable === true) {
    if (typeof o.type === 'string') o.type = [o.type, 'null'];
    // A nullable enum (e.g. a stream chunk's `finish_reason`) takes null too, as on the wire.
    if (Array.isArray(o.enum) && !o.enum.includes(null)) o.enum.push(null);
    // `$ref` with `nullable` beside it (e.g. a stream chunk's `usage`): the reference, or null.
    if (typeof o.$ref === 'string') {
      o.anyOf = [{ $ref: o.$ref }, { type: 'null' }];
      delete o.$ref;
    }
    delete o.nullable;
  }
  for (const value of Object.values(o)) normalise(value);
}

/**
 * Where the real wire (and so the simulator) knowingly differs from the document, per
 * vendor/openai/README.md: a `paused` job status the enum lacks, and `first_id`/`last_id` of
 * an empty list being null.
 */
function applyKnownWireDifferences(schemas: Record<string, Json>): void {
  const job = schemas.FineTuningJob as { properties: { status: { enum: string[] } } };
  job.properties.status.enum.push('paused');
  const files = schemas.ListFilesResponse as { properties: Record<string, Json> };
  for (const key of ['first_id', 'last_id'])
    files.properties[key] = { anyOf: [{ type: 'string' }, { type: 'null' }] };
}

export interface ConformanceFailure {
  method: string;
  url: string;
  status: number;
  schema: string;
  errors: string[];
}

export interface ConformanceChecker {
  /** Checks every JSON response; returns the failures and how many bodies were checked. */
  check(responses: RecordedResponse[]): {
    checked: number;
    failures: ConformanceFailure[];
    unmapped: string[];
  };
  /** Errors of one value against a named component schema (empty when valid). */
  errorsAgainst(schemaName: string, value: unknown): string[];
}

let cached: ConformanceChecker | undefined;

/** Parsing the 3 MB YAML takes seconds; keep a JSON copy in the temp folder, keyed by size and mtime. */
function readSpec(): unknown {
  const { size, mtimeMs } = statSync(openApiPath);
  const cachePath = join(tmpdir(), `tuneline-openapi-${size}-${Math.floor(mtimeMs)}.json`);
  if (existsSync(cachePath)) return JSON.parse(readFileSync(cachePath, 'utf8'));
  const spec = parse(readFileSync(openApiPath, 'utf8'));
  const partial = `${cachePath}.${process.pid}`;
  writeFileSync(partial, JSON.stringify(spec));
  renameSync(partial, cachePath);
  return spec;
}

export function loadConformanceChecker(): ConformanceChecker {
  if (cached) return cached;
  if (!existsSync(openApiPath)) {
    throw new Error(
      `OpenAI's OpenAPI document was not found at ${openApiPath}: it is part of the repository (vendor/openai); restore it with git.`,
    );
  }
  const spec = readSpec() as {
    paths: Record<
      string,
      Record<
        string,
        { responses?: Record<string, { content?: Record<string, { schema?: { $ref?: string } }> }> }
      >
    >;
    components: { schemas: Record<string, Json> };
  };
  normalise(spec.components);
  applyKnownWireDifferences(spec.components.schemas);
  // CommonJS packages: take `.default` when the loader wraps them.
  const Ajv2020 = ((Ajv2020Module as unknown as { default?: unknown }).default ??
    Ajv2020Module) as typeof Ajv2020Module.default;
  const addFormats = ((addFormatsModule as unknown as { default?: unknown }).default ??
    addFormatsModule) as typeof addFormatsModule.default;
  const ajv = new Ajv2020({ strict: false, validateFormats: true });
  addFormats(ajv);
  ajv.addFormat('unixtime', { type: 'number', validate: (x: number) => Number.isInteger(x) && x >= 0 });
  ajv.addSchema({ $id: 'openapi', components: spec.components });

  const schemaFor = (route: string, method: string, status: number): string | undefined => {
    if (status >= 400) return '#/components/schemas/ErrorResponse';
    return spec.paths[route]?.[method.toLowerCase()]?.responses?.[String(status)]?.content?.[
      'application/json'
    ]?.schema?.$ref;
  };

  cached = {
    check(responses) {
      const failures: ConformanceFailure[] = [];
      const unmapped: string[] = [];
      let checked = 0;
      for (const r of responses) {
        if (r.dialect === 'admin' || !r.contentType.startsWith('application/json') || !r.body) continue;
        const ref = r.route
          ? schemaFor(r.route, r.method, r.status)
          : r.status >= 400
            ? '#/components/schemas/ErrorResponse'
            : undefined;
        if (!ref) {
          unmapped.push(`${r.method} ${r.url} ${r.status}`);
          continue;
        }
        const validate = ajv.getSchema(`openapi${ref}`);
        if (!validate) throw new Error(`schema ${ref} did not compile`);
        checked++;
        if (!validate(JSON.parse(r.body))) {
          failures.push({
            method: r.method,
            url: r.url,
            status: r.status,
            schema: ref,
            errors: (validate.errors ?? []).map((e: ErrorObject) => `${e.instancePath} ${e.message}`),
          });
        }
      }
      return { checked, failures, unmapped };
    },
    errorsAgainst(schemaName, value) {
      const validate = ajv.getSchema(`openapi#/components/schemas/${schemaName}`);
      if (!validate) throw new Error(`no schema ${schemaName}`);
      return validate(value)
        ? []
        : (validate.errors ?? []).map((e: ErrorObject) => `${e.instancePath} ${e.message}`);
    },
  };
  return cached;
}

// ---- training data ----

export interface ExampleSpec {
  system?: string;
  user: string;
  assistant: string;
}

export function invoiceExamples(n: number): ExampleSpec[] {
  return Array.from({ length: n }, (_, i) => ({
    system: 'Extract the invoice fields as JSON.',
    user: `Invoice ${1000 + i} from supplier ${['Acme', 'Globex', 'Initech', 'Umbrella'][i % 4]} dated 2026-0${(i % 9) + 1}-1${i % 10} total ${(i + 1) * 17}.50 EUR`,
    assistant: JSON.stringify({
      invoice_number: String(1000 + i),
      total: `${(i + 1) * 17}.50`,
      currency: 'EUR',
    }),
  }));
}

export function toJsonl(examples: ExampleSpec[]): string {
  return `${examples
    .map((e) =>
      JSON.stringify({
        messages: [
          ...(e.system ? [{ role: 'system', content: e.system }] : []),
          { role: 'user', content: e.user },
          { role: 'assistant', content: e.assistant },
        ],
      }),
    )
    .join('\n')}\n`;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function waitForFileProcessed(client: OpenAI, fileId: string): Promise<void> {
  for (let i = 0; i < 400; i++) {
    if ((await client.files.retrieve(fileId)).status === 'processed') return;
    await sleep(5);
  }
  throw new Error(`file ${fileId} never processed`);
}

export async function waitForJob(
  client: OpenAI,
  jobId: string,
  statuses: string[] = ['succeeded', 'failed', 'cancelled'],
  timeoutMs = 15_000,
): Promise<OpenAI.FineTuning.Jobs.FineTuningJob> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const job = await client.fineTuning.jobs.retrieve(jobId);
    if (statuses.includes(job.status)) return job;
    if (Date.now() > deadline) throw new Error(`job ${jobId} still ${job.status} after ${timeoutMs} ms`);
    await sleep(10);
  }
}
