// The simulator's HTTP surface: OpenAI's `/v1/...` and Azure OpenAI's `/openai/...` dialects over one
// in-memory state, plus `/_sim/...` admin endpoints for tests.
import multipart from '@fastify/multipart';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { AzureDeployments } from './azure-deployments.ts';
import { ChatRequestLog, type ReceivedChatRequest, registerChatRoutes } from './chat-routes.ts';
import { type Clock, Scheduler, systemClock } from './clock.ts';
import { ApiError, badRequest, unauthorized } from './errors.ts';
import { type FaultConfig, type FaultConfigInput, FaultInjector, type FaultLogEntry } from './faults.ts';
import { FineTuningService } from './jobs.ts';
import { BASE_MODELS, findBaseModel } from './models.ts';
import { paginate, parseLimit } from './pagination.ts';
import { SeededRandom } from './random.ts';
import { ORGANIZATION, ORGANIZATION_ID, type SimFile, type SimJob } from './state.ts';
import { registerTogether, TogetherService, type TogetherSnapshot, togetherSnapshot } from './together.ts';
import { ToyModels } from './toy-model.ts';
import { type WebhookDeliveryRecord, WebhookSender } from './webhooks.ts';

export const DEFAULT_MAX_FILE_BYTES = 512 * 1024 * 1024;

/** One answer the simulator gave, for conformance checks. `route` uses the OpenAPI path template. */
export interface RecordedResponse {
  method: string;
  dialect: 'openai' | 'azure' | 'admin';
  route: string | null;
  url: string;
  status: number;
  contentType: string;
  body: string;
}

export interface SimulatorOptions {
  /** 0 (default) picks a free port. */
  port?: number;
  host?: string;
  seed?: number;
  apiKey?: string;
  /** Time multiplier: 1000 makes a 20-minute job take 1.2 s. */
  speed?: number;
  webhookUrl?: string;
  webhookSecret?: string;
  webhookRetry?: { maxAttempts?: number; baseDelayMs?: number };
  faults?: FaultConfigInput;
  clock?: Clock;
  maxFileBytes?: number;
  onResponse?: (response: RecordedResponse) => void;
}

export interface SimulatorStateSnapshot {
  seed: number;
  speed: number;
  faults: FaultConfig;
  faultLog: FaultLogEntry[];
  webhookDeliveries: WebhookDeliveryRecord[];
  files: Array<Pick<SimFile, 'id' | 'filename' | 'bytes' | 'purpose' | 'status'>>;
  jobs: Array<Pick<SimJob, 'id' | 'status' | 'model' | 'metadata' | 'fine_tuned_model' | 'trained_tokens'>>;
  models: string[];
}

export interface SimulatorAdmin {
  state(): SimulatorStateSnapshot;
  setFaults(input: FaultConfigInput): FaultConfig;
  forceOutcome(jobId: string, outcome: 'fail' | 'cancel'): void;
  /** The chat-completions requests received (last 1,000), bodies exactly as parsed. */
  chatRequests(): ReceivedChatRequest[];
  clearChatRequests(): void;
  /** The Together dialect's files and jobs. */
  together(): TogetherSnapshot;
  /** Azure management: the account's deployments. */
  azureDeployments(): Array<{ name: string; model: string; provisioningState: string }>;
  /** Azure's idle deletion of a deployment (15 days without calls), at once. */
  idleDelete(name: string): boolean;
}

export interface RunningSimulator {
  /** OpenAI base URL, e.g. http://127.0.0.1:4010/v1 */
  url: string;
  /** Without `/v1`: the Azure `endpoint`. */
  baseUrl: string;
  port: number;
  apiKey: string;
  admin: SimulatorAdmin;
  close(): Promise<void>;
}

type Dialect = 'openai' | 'azure';
interface Params {
  file_id?: string;
  fine_tuning_job_id?: string;
  model?: string;
  deployment?: string;
}
type Req = FastifyRequest<{ Params: Params; Querystring: Record<string, string | undefined>; Body: unknown }>;

function specRoute(url: string | undefined): string | null {
  if (!url) return null;
  const stripped = url.replace(/^\/(v1|openai)/, '').replace(/^\/deployments\/:deployment/, '');
  return stripped.replace(/:([A-Za-z_]+)/g, '{$1}');
}

export async function startSimulator(opts: SimulatorOptions = {}): Promise<RunningSimulator> {
  const seed = opts.seed ?? 1;
  const speed = opts.speed ?? 1;
  const apiKey = opts.apiKey ?? 'sk-sim';
  const clock = opts.clock ?? systemClock;
  const maxFileBytes = opts.maxFileBytes ?? DEFAULT_MAX_FILE_BYTES;
  if (!(speed > 0)) throw new Error('speed must be > 0');
  if (opts.webhookUrl && !opts.webhookSecret) throw new Error('webhookUrl needs webhookSecret');

  const scheduler = new Scheduler(clock, speed);
  const faults = new FaultInjector(seed, opts.faults);
  // Separate streams, so polling or chatting doesn't shift the ids of files and jobs.
  const requestIds = new SeededRandom(seed ^ 0x7e9);
  const completionIds = new SeededRandom(seed ^ 0xc4a7);
  const webhooks =
    opts.webhookUrl && opts.webhookSecret
      ? new WebhookSender({
          url: opts.webhookUrl,
          secret: opts.webhookSecret,
          clock,
          scheduler,
          ...opts.webhookRetry,
        })
      : null;
  const service = new FineTuningService(new SeededRandom(seed), clock, scheduler, faults, webhooks);
  const toyModels = new ToyModels(seed);
  const chatLog = new ChatRequestLog();
  const together = new TogetherService(new SeededRandom(seed ^ 0x70937), clock, scheduler);
  const deployments = new AzureDeployments(
    scheduler,
    (model) => findBaseModel(model) !== undefined || service.getFineTunedModel(model) !== undefined,
  );

  // Closing ends every connection, also one whose client stopped sending midway through an upload
  // (its handler would otherwise keep close() waiting for a body that never ends).
  const app = Fastify({ logger: false, bodyLimit: 64 * 1024 * 1024, forceCloseConnections: true });
  await app.register(multipart, { limits: { fileSize: maxFileBytes, files: 1, fields: 10 } });

  app.addHook('onRequest', async (request, reply) => {
    const requestId = requestIds.id('req_', 32);
    reply.header('x-request-id', requestId);
    const path = request.url.split('?')[0] ?? '';
    if (path.startsWith('/_sim/')) return;
    const dialect: Dialect = path.startsWith('/openai/') ? 'azure' : 'openai';
    checkAuth(request, dialect, apiKey);
    if (faults.config.latencyMs > 0) await new Promise((r) => setTimeout(r, faults.config.latencyMs));
    setRateLimitHeaders(reply, 1);
    const fault = faults.forRequest(request.method, path);
    if (fault === '429') {
      setRateLimitHeaders(reply, 0);
      const seconds = faults.config.retryAfterSeconds;
      throw new ApiError(
        429,
        'Rate limit reached for requests. Please try again later.',
        'requests',
        null,
        'rate_limit_exceeded',
        {
          'retry-after': String(Math.ceil(seconds)),
          'retry-after-ms': String(Math.round(seconds * 1000)),
        },
      );
    }
    if (fault === '500') throw serverError();
    if (fault === 'drop') {
      return dropConnection(request, reply);
    }
  });

  app.addHook('onSend', async (request, reply, payload) => {
    if (opts.onResponse) {
      const url = request.url;
      const path = url.split('?')[0] ?? '';
      opts.onResponse({
        method: request.method,
        dialect: path.startsWith('/_sim/') ? 'admin' : path.startsWith('/openai/') ? 'azure' : 'openai',
        route: specRoute(request.routeOptions.url),
        url,
        status: reply.statusCode,
        contentType: String(reply.getHeader('content-type') ?? ''),
        body:
          typeof payload === 'string' ? payload : Buffer.isBuffer(payload) ? payload.toString('utf8') : '',
      });
    }
    return payload;
  });

  app.setErrorHandler((err: unknown, _request, reply) => {
    const apiError = toApiError(err, maxFileBytes);
    reply.status(apiError.status).headers(apiError.headers).type('application/json').send(apiError.body());
  });

  app.setNotFoundHandler((request, reply) => {
    const e = new ApiError(
      404,
      `Invalid URL (${request.method} ${request.url.split('?')[0]})`,
      'invalid_request_error',
    );
    reply.status(404).type('application/json').send(e.body());
  });

  for (const [prefix, dialect] of [
    ['/v1', 'openai'],
    ['/openai', 'azure'],
  ] as const) {
    registerApi(app, prefix, service, faults);
    registerChatRoutes(app, prefix, dialect, {
      service,
      faults,
      completionIds,
      clock,
      toyModels,
      log: chatLog,
      // Azure calls a deployment by name; a name that is no ARM deployment is taken as the model itself.
      modelOfDeployment: (name) => deployments.modelOf(name),
    });
  }
  registerTogether(app, together, service, faults, completionIds, clock, toyModels, chatLog);
  deployments.register(app);
  registerAdmin(app, seed, speed, service, faults, webhooks);
  app.get('/_sim/chat-requests', async () => ({ data: chatLog.list() }));

  await app.listen({ port: opts.port ?? 0, host: opts.host ?? '127.0.0.1' });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : (opts.port ?? 0);
  const displayHost = opts.host && opts.host !== '0.0.0.0' ? opts.host : '127.0.0.1';
  const baseUrl = `http://${displayHost.includes(':') ? `[${displayHost}]` : displayHost}:${port}`;

  const admin: SimulatorAdmin = {
    state: () => snapshot(seed, speed, service, faults, webhooks),
    setFaults: (input) => {
      faults.configure(input);
      return faults.config;
    },
    forceOutcome: (jobId, outcome) => {
      if (together.jobs.has(jobId)) {
        if (outcome === 'fail') together.fail(jobId);
        else together.cancel(jobId);
        return;
      }
      service.forceOutcome(jobId, outcome);
    },
    chatRequests: () => chatLog.list(),
    clearChatRequests: () => chatLog.clear(),
    together: () => togetherSnapshot(together),
    azureDeployments: () =>
      [...deployments.deployments.values()].map(({ name, model, provisioningState }) => ({
        name,
        model,
        provisioningState,
      })),
    idleDelete: (name) => deployments.idleDelete(name),
  };

  return {
    url: `${baseUrl}/v1`,
    baseUrl,
    port,
    apiKey,
    admin,
    async close() {
      service.close();
      together.close();
      deployments.close();
      scheduler.stopAll();
      await webhooks?.close();
      await app.close();
    },
  };
}

function checkAuth(request: FastifyRequest, dialect: Dialect, apiKey: string): void {
  const bearer = request.headers.authorization?.match(/^Bearer\s+(.+)$/i)?.[1];
  if (dialect === 'azure') {
    const query = request.query as Record<string, string | undefined>;
    if (!query['api-version'])
      throw badRequest(
        "Missing required query parameter 'api-version'.",
        'api-version',
        'missing_api_version',
      );
    const key = (request.headers['api-key'] as string | undefined) ?? bearer;
    if (key !== apiKey) {
      throw new ApiError(
        401,
        'Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource.',
        'invalid_request_error',
        null,
        '401',
      );
    }
    return;
  }
  if (bearer !== apiKey) throw unauthorized(bearer);
}

function setRateLimitHeaders(reply: FastifyReply, remainingShare: number): void {
  reply.headers({
    'x-ratelimit-limit-requests': '10000',
    'x-ratelimit-remaining-requests': String(Math.floor(9999 * remainingShare)),
    'x-ratelimit-reset-requests': remainingShare > 0 ? '6ms' : '1s',
    'x-ratelimit-limit-tokens': '2000000',
    'x-ratelimit-remaining-tokens': String(Math.floor(1999000 * remainingShare)),
    'x-ratelimit-reset-tokens': remainingShare > 0 ? '0s' : '1s',
  });
}

function toApiError(err: unknown, maxFileBytes: number): ApiError {
  if (err instanceof ApiError) return err;
  const e = err as { code?: string; statusCode?: number; message?: string };
  if (e.code === 'FST_REQ_FILE_TOO_LARGE' || e.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
    return new ApiError(
      413,
      `File is too large: the limit is ${maxFileBytes} bytes.`,
      'invalid_request_error',
      'file',
      'file_too_large',
    );
  }
  if (e.statusCode && e.statusCode >= 400 && e.statusCode < 500) {
    return new ApiError(e.statusCode, e.message ?? 'Bad request', 'invalid_request_error');
  }
  return serverError();
}

/** OpenAI's answer to an internal error. */
function serverError(): ApiError {
  return new ApiError(
    500,
    'The server had an error while processing your request. Sorry about that!',
    'server_error',
  );
}

/** A "dropped connection" fault: the socket closes with no answer at all. */
function dropConnection(request: FastifyRequest, reply: FastifyReply) {
  request.raw.socket.destroy();
  return reply.hijack();
}

function fileJson(file: SimFile) {
  const { content: _content, ...rest } = file;
  return rest;
}

function jobJson(job: SimJob) {
  return {
    object: 'fine_tuning.job' as const,
    id: job.id,
    model: job.model,
    created_at: job.created_at,
    finished_at: job.finished_at,
    fine_tuned_model: job.fine_tuned_model,
    organization_id: ORGANIZATION_ID,
    result_files: job.result_files,
    status: job.status,
    validation_file: job.validation_file,
    training_file: job.training_file,
    hyperparameters: job.hyperparameters,
    method: { type: 'supervised', supervised: { hyperparameters: job.hyperparameters } },
    trained_tokens: job.trained_tokens,
    error: job.error,
    user_provided_suffix: job.suffix,
    seed: job.seed,
    estimated_finish: job.estimated_finish,
    integrations: [],
    metadata: job.metadata,
  };
}

function metadataFilter(query: Record<string, string | undefined>): Record<string, string> {
  const filter: Record<string, string> = {};
  for (const [key, value] of Object.entries(query)) {
    const m = /^metadata\[(.+)\]$/.exec(key);
    if (m?.[1] && typeof value === 'string') filter[m[1]] = value;
  }
  return filter;
}

function registerApi(
  app: FastifyInstance,
  prefix: string,
  service: FineTuningService,
  faults: FaultInjector,
): void {
  // ---- files ----
  app.post(`${prefix}/files`, async (request: Req) => {
    if (!request.isMultipart())
      throw badRequest('Expected a multipart/form-data body with `file` and `purpose`.', 'file');
    let purpose: string | undefined;
    let upload: { filename: string; content: Buffer } | undefined;
    for await (const part of request.parts()) {
      if (part.type === 'file') upload = { filename: part.filename, content: await part.toBuffer() };
      else if (part.fieldname === 'purpose') purpose = String(part.value);
    }
    if (!purpose) throw badRequest("Missing required parameter: 'purpose'.", 'purpose');
    if (purpose !== 'fine-tune')
      throw badRequest(
        `Invalid value for 'purpose': the simulator accepts 'fine-tune' only, got '${purpose}'.`,
        'purpose',
        'invalid_value',
      );
    if (!upload) throw badRequest("Missing required parameter: 'file'.", 'file');
    if (!upload.filename.toLowerCase().endsWith('.jsonl')) {
      throw badRequest(
        `Invalid file format for Fine-Tuning API. Must be .jsonl (got '${upload.filename}').`,
        'file',
        'invalid_file_format',
      );
    }
    return fileJson(service.addFile(upload.filename, purpose, upload.content));
  });

  app.get(`${prefix}/files`, async (request: Req) => {
    const q = request.query;
    const limit = parseLimit(q.limit, 10_000, 10_000);
    let files = [...service.state.files.values()];
    if (q.purpose) files = files.filter((f) => f.purpose === q.purpose);
    if (q.order !== 'asc') files.reverse();
    const page = paginate(files, q.after, limit);
    const data = page.data.map(fileJson);
    return {
      object: 'list',
      data,
      first_id: data[0]?.id ?? null,
      last_id: data.at(-1)?.id ?? null,
      has_more: page.has_more,
    };
  });

  app.get(`${prefix}/files/:file_id`, async (request: Req) =>
    fileJson(service.getFile(request.params.file_id ?? '')),
  );
  app.delete(`${prefix}/files/:file_id`, async (request: Req) =>
    service.deleteFile(request.params.file_id ?? ''),
  );
  app.get(`${prefix}/files/:file_id/content`, async (request: Req, reply) => {
    const file = service.getFile(request.params.file_id ?? '');
    reply.type(file.filename.endsWith('.csv') ? 'text/csv' : 'application/octet-stream');
    return file.content;
  });

  // ---- fine-tuning jobs ----
  app.post(`${prefix}/fine_tuning/jobs`, async (request: Req, reply) => {
    const body = (request.body ?? {}) as Record<string, unknown>;
    const job = service.createJob(body);
    const lost = faults.loseCreate(request.method, request.url.split('?')[0] ?? '');
    if (lost === '500') throw serverError();
    if (lost === 'drop') {
      return dropConnection(request, reply);
    }
    return jobJson(job);
  });

  app.get(`${prefix}/fine_tuning/jobs`, async (request: Req) => {
    const limit = parseLimit(request.query.limit, 20, 100);
    const page = paginate(service.listJobs(metadataFilter(request.query)), request.query.after, limit);
    return { object: 'list', data: page.data.map(jobJson), has_more: page.has_more };
  });

  const jobId = (request: Req) => request.params.fine_tuning_job_id ?? '';
  app.get(`${prefix}/fine_tuning/jobs/:fine_tuning_job_id`, async (request: Req) =>
    jobJson(service.getJob(jobId(request))),
  );
  app.post(`${prefix}/fine_tuning/jobs/:fine_tuning_job_id/cancel`, async (request: Req) =>
    jobJson(service.cancelJob(jobId(request))),
  );
  app.post(`${prefix}/fine_tuning/jobs/:fine_tuning_job_id/pause`, async (request: Req) =>
    jobJson(service.pauseJob(jobId(request))),
  );
  app.post(`${prefix}/fine_tuning/jobs/:fine_tuning_job_id/resume`, async (request: Req) =>
    jobJson(service.resumeJob(jobId(request))),
  );

  app.get(`${prefix}/fine_tuning/jobs/:fine_tuning_job_id/events`, async (request: Req) => {
    const job = service.getJob(jobId(request));
    const limit = parseLimit(request.query.limit, 20, 100);
    const page = paginate([...job.events].reverse(), request.query.after, limit);
    return { object: 'list', data: page.data, has_more: page.has_more };
  });

  app.get(`${prefix}/fine_tuning/jobs/:fine_tuning_job_id/checkpoints`, async (request: Req) => {
    const job = service.getJob(jobId(request));
    const limit = parseLimit(request.query.limit, 10, 100);
    const page = paginate([...job.checkpoints].reverse(), request.query.after, limit);
    return {
      object: 'list',
      data: page.data,
      first_id: page.data[0]?.id ?? null,
      last_id: page.data.at(-1)?.id ?? null,
      has_more: page.has_more,
    };
  });

  // ---- models ----
  const modelNotFound = (id: string) =>
    new ApiError(
      404,
      `The model '${id}' does not exist`,
      'invalid_request_error',
      'model',
      'model_not_found',
    );
  const modelJson = (id: string) => {
    const base = findBaseModel(id);
    if (base) return { id, object: 'model', created: base.created, owned_by: 'system' };
    const tuned = service.getFineTunedModel(id);
    if (tuned) return { id, object: 'model', created: tuned.created, owned_by: ORGANIZATION };
    throw modelNotFound(id);
  };
  app.get(`${prefix}/models`, async () => ({
    object: 'list',
    data: [
      ...BASE_MODELS.map((m) => m.id),
      ...[...service.state.models.values()].filter((m) => !m.deleted).map((m) => m.id),
    ].map(modelJson),
  }));
  app.get(`${prefix}/models/:model`, async (request: Req) => modelJson(request.params.model ?? ''));
  app.delete(`${prefix}/models/:model`, async (request: Req) => {
    const id = request.params.model ?? '';
    if (findBaseModel(id)) {
      throw new ApiError(
        403,
        `You have insufficient permissions to delete the model '${id}'.`,
        'invalid_request_error',
        'model',
        'insufficient_permissions',
      );
    }
    const tuned = service.getFineTunedModel(id);
    if (!tuned) throw modelNotFound(id);
    tuned.deleted = true;
    return { id, object: 'model', deleted: true };
  });
}

function registerAdmin(
  app: FastifyInstance,
  seed: number,
  speed: number,
  service: FineTuningService,
  faults: FaultInjector,
  webhooks: WebhookSender | null,
): void {
  app.get('/_sim/state', async () => snapshot(seed, speed, service, faults, webhooks));
  app.post('/_sim/faults', async (request) => {
    faults.configure((request.body ?? {}) as FaultConfigInput);
    return faults.config;
  });
  app.post(
    '/_sim/jobs/:id/outcome',
    async (request: FastifyRequest<{ Params: { id: string }; Body: { outcome?: unknown } }>) => {
      const outcome = request.body?.outcome;
      if (outcome !== 'fail' && outcome !== 'cancel')
        throw badRequest("'outcome' must be 'fail' or 'cancel'.", 'outcome');
      return jobJson(service.forceOutcome(request.params.id, outcome));
    },
  );
}

function snapshot(
  seed: number,
  speed: number,
  service: FineTuningService,
  faults: FaultInjector,
  webhooks: WebhookSender | null,
): SimulatorStateSnapshot {
  return {
    seed,
    speed,
    faults: faults.config,
    faultLog: [...faults.log],
    webhookDeliveries: webhooks ? webhooks.deliveries.map((d) => ({ ...d, statuses: [...d.statuses] })) : [],
    files: [...service.state.files.values()].map(({ id, filename, bytes, purpose, status }) => ({
      id,
      filename,
      bytes,
      purpose,
      status,
    })),
    jobs: [...service.state.jobs.values()].map(
      ({ id, status, model, metadata, fine_tuned_model, trained_tokens }) => ({
        id,
        status,
        model,
        metadata,
        fine_tuned_model,
        trained_tokens,
      }),
    ),
    models: [...service.state.models.values()].filter((m) => !m.deleted).map((m) => m.id),
  };
}
