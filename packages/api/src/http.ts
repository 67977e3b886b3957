import { type FieldError, fieldErrors } from '@tuneline/contracts';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { Caller } from './auth.ts';

/**
 * A small route layer over fastify: each route declares its zod schemas once; they validate the
 * request (400 naming every bad field) and feed the OpenAPI document, so the two cannot drift apart.
 */

export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly fields?: FieldError[],
    /** For routes answering in OpenAI's envelope: its `type`, `param` and `code` (else derived). */
    readonly openai?: { type?: string; param?: string | null; code?: string | null },
    /** More of the error body beside `message` (e.g. the 402's `code` and `credits`). */
    readonly details?: Omit<ErrorBody['error'], 'message' | 'fields'>,
  ) {
    super(message);
  }
}

/** OpenAI's error envelope `{error: {message, type, param, code}}` for an error of an OpenAI-shaped route. */
export function openAIErrorBody(status: number, message: string, err?: HttpError) {
  // OpenAI's own choices for the statuses every route shares, unless the error says otherwise.
  const byStatus: Record<number, [string, string | null]> = {
    401: ['invalid_request_error', 'invalid_api_key'],
    402: ['insufficient_quota', 'insufficient_quota'],
    429: ['requests', 'rate_limit_exceeded'],
  };
  const [defaultType, defaultCode] = byStatus[status] ?? [
    status < 500 ? 'invalid_request_error' : 'server_error',
    null,
  ];
  const type = err?.openai?.type ?? defaultType;
  const param = err?.openai?.param !== undefined ? err.openai.param : (err?.fields?.[0]?.field ?? null);
  const code = err?.openai?.code !== undefined ? err.openai.code : defaultCode;
  return { error: { message, type, param, code } };
}

export const notFound = (what: string) => new HttpError(404, `${what} not found`);

/** The row found, or 404 naming what is missing. */
export function orNotFound<T>(row: T | null | undefined, what: string): T {
  if (row === null || row === undefined) throw notFound(what);
  return row;
}

/** The amounts of a refused fine-tune (402), as decimal strings. */
export interface CreditShortfallBody {
  estimate: string;
  training: string;
  evaluation: string;
  evaluationExamples: number;
  evaluationModels: number;
  marginPercent: number;
  required: string;
  available: string;
  shortfall: string;
}

export interface ErrorBody {
  error: { message: string; fields?: FieldError[]; code?: string; credits?: CreditShortfallBody };
}

export const errorSchema = z
  .object({
    error: z.object({
      message: z.string(),
      fields: z.array(z.object({ field: z.string(), message: z.string() })).optional(),
      code: z.string().optional().describe('a machine-readable reason, e.g. `insufficient_credits` (402)'),
      credits: z
        .object({
          estimate: z.string().describe("the fine-tune's estimated credits: training plus evaluation"),
          training: z.string().describe('the training part of the estimate (its epochs × billed tokens)'),
          evaluation: z
            .string()
            .describe('the held-out evaluation part (0 without a testing file or with `evaluate: false`)'),
          evaluationExamples: z.int().describe('testing examples the evaluation part is for'),
          evaluationModels: z.int().describe('models asked each example (fine-tuned, base, champion)'),
          marginPercent: z.number(),
          required: z.string().describe('estimate plus margin: what the reservation needs'),
          available: z.string(),
          shortfall: z.string().describe('required minus available'),
        })
        .optional()
        .describe('with 402: the amounts of the credit check'),
    }),
  })
  .meta({ id: 'Error' });

export type Auth = 'license' | 'admin' | 'none';

export interface ResponseSpec {
  description: string;
  schema?: z.ZodType;
  /** Defaults to application/json. */
  contentType?: string;
}

/**
 * A route's answers by status. An error answer (its body the error envelope) is declared by its
 * description alone; the 401 of a route behind a key is the table's (UNAUTHENTICATED), not each route's.
 */
export type Responses = Record<number, ResponseSpec | string>;

/** The 401 of a route behind each kind of key. */
const UNAUTHENTICATED: Record<Auth, string | undefined> = {
  license: 'missing or invalid API key',
  admin: 'missing or non-admin key',
  none: undefined,
};

/** Every answer of a route spelled out: the error answers' envelope, and the 401 its key implies. */
function responsesOf(auth: Auth, declared: Responses): Record<number, ResponseSpec> {
  const unauthenticated = UNAUTHENTICATED[auth];
  const all: Responses = unauthenticated ? { 401: unauthenticated, ...declared } : declared;
  const responses: Record<number, ResponseSpec> = {};
  for (const [status, r] of Object.entries(all))
    responses[Number(status)] = typeof r === 'string' ? { description: r, schema: errorSchema } : r;
  return responses;
}

export interface RouteSpec<P extends z.ZodType, Q extends z.ZodType, B extends z.ZodType> {
  method: 'GET' | 'POST' | 'DELETE';
  /** fastify syntax: `/v1/datasets/:id`. */
  url: string;
  auth: Auth;
  summary: string;
  tag: string;
  params?: P;
  query?: Q;
  body?: B;
  /** Turns a body the schema refused into the error to answer (default: 400 naming every bad field). */
  invalidBody?: (error: z.ZodError) => HttpError;
  /** `openai`: every error of this route leaves in OpenAI's envelope (an OpenAI-compatible endpoint). */
  errors?: 'openai';
  responses: Responses;
  /** Largest body this route accepts, when it differs from the app's. */
  bodyLimit?: number;
}

export interface RouteContext<P, Q, B> {
  params: P;
  query: Q;
  body: B;
  caller: Caller;
  request: FastifyRequest;
  reply: FastifyReply;
}

/** What the OpenAPI generator reads: a route's spec with every answer spelled out. */
export type RegisteredRoute = Omit<RouteSpec<z.ZodType, z.ZodType, z.ZodType>, 'responses'> & {
  responses: Record<number, ResponseSpec>;
};

export class RouteTable {
  readonly routes: RegisteredRoute[] = [];

  constructor(
    private readonly app: FastifyInstance,
    private readonly authenticate: (request: FastifyRequest, auth: Auth) => Promise<Caller>,
  ) {}

  add<
    P extends z.ZodType = z.ZodUnknown,
    Q extends z.ZodType = z.ZodUnknown,
    B extends z.ZodType = z.ZodUnknown,
  >(
    spec: RouteSpec<P, Q, B>,
    handler: (ctx: RouteContext<z.output<P>, z.output<Q>, z.output<B>>) => Promise<unknown>,
  ): void {
    this.routes.push({
      ...(spec as unknown as RegisteredRoute),
      responses: responsesOf(spec.auth, spec.responses),
    });
    const successStatus = Number(Object.keys(spec.responses).find((s) => Number(s) < 300) ?? 200);
    this.app.route({
      method: spec.method,
      url: spec.url,
      ...(spec.bodyLimit !== undefined ? { bodyLimit: spec.bodyLimit } : {}),
      config: { openaiErrors: spec.errors === 'openai' },
      handler: async (request, reply) => {
        // Authentication first: an unauthenticated caller learns nothing about the body's shape.
        const caller = await this.authenticate(request, spec.auth);
        const params = parse('path', spec.params, request.params);
        const query = parse('query', spec.query, request.query);
        const body = parse('body', spec.body, request.body, spec.invalidBody);
        // The declared success status; a handler may set another (e.g. 200 for a replayed create).
        reply.code(successStatus);
        const result = await handler({ params, query, body, caller, request, reply });
        if (reply.sent) return reply;
        // One serialisation (bigint as decimal strings), sent as it is: a page of 100 rows is not
        // stringified, parsed and stringified again.
        return reply.type('application/json; charset=utf-8').send(jsonText(result));
      },
    });
  }
}

function parse<S extends z.ZodType>(
  where: string,
  schema: S | undefined,
  value: unknown,
  invalid?: (error: z.ZodError) => HttpError,
): z.output<S> {
  if (!schema) return value as z.output<S>;
  const parsed = schema.safeParse(value ?? (where === 'body' ? undefined : {}));
  if (parsed.success) return parsed.data;
  if (invalid) throw invalid(parsed.error);
  const fields = fieldErrors(parsed.error);
  const message = `invalid ${where}: ${fields.map((f) => `${f.field}: ${f.message}`).join('; ')}`;
  throw new HttpError(400, message, fields);
}

const bigintAsString = (_k: string, v: unknown) => (typeof v === 'bigint' ? v.toString() : v);

/** Serialises bigint as decimal strings: credits never pass through a float. */
export function toJson(value: unknown): unknown {
  return JSON.parse(jsonText(value));
}

/** The JSON text of a response body, bigint as decimal strings. */
export function jsonText(value: unknown): string {
  return JSON.stringify(value, bigintAsString);
}

/** Every error leaves as `{error: {message, fields?}}`; unexpected ones are logged and hidden. */
export function installErrorHandler(app: FastifyInstance): void {
  app.setErrorHandler((err: Error & { statusCode?: number; code?: string }, request, reply) => {
    const config = request.routeOptions.config as { openaiErrors?: boolean } | undefined;
    if (config?.openaiErrors) {
      const status = err instanceof HttpError ? err.status : (err.statusCode ?? 500);
      if (status >= 500 && !(err instanceof HttpError)) {
        request.log.error({ err }, 'request failed');
        return reply.code(500).send(openAIErrorBody(500, 'internal error'));
      }
      const message =
        status === 400 && !(err instanceof HttpError) ? `Invalid body: ${err.message}` : err.message;
      return reply
        .code(status)
        .send(openAIErrorBody(status, message, err instanceof HttpError ? err : undefined));
    }
    if (err instanceof HttpError) {
      const body: ErrorBody = {
        error: { message: err.message, ...(err.fields ? { fields: err.fields } : {}), ...err.details },
      };
      return reply.code(err.status).send(body);
    }
    const status = err.statusCode ?? 500;
    if (status >= 500) {
      request.log.error({ err }, 'request failed');
      return reply.code(500).send({ error: { message: 'internal error' } });
    }
    // fastify's own 4xx: bad JSON, body too large, wrong content type.
    return reply.code(status).send({ error: { message: err.message } });
  });
  app.setNotFoundHandler((request, reply) =>
    reply.code(404).send({ error: { message: `no route ${request.method} ${request.url.split('?')[0]}` } }),
  );
}
