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
  ) {
    super(message);
  }
}

export const notFound = (what: string) => new HttpError(404, `${what} not found`);

export interface ErrorBody {
  error: { message: string; fields?: FieldError[] };
}

export const errorSchema = z
  .object({
    error: z.object({
      message: z.string(),
      fields: z.array(z.object({ field: z.string(), message: z.string() })).optional(),
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

export interface RouteSpec<P extends z.ZodType, Q extends z.ZodType, B extends z.ZodType> {
  method: 'GET' | 'POST';
  /** fastify syntax: `/v1/datasets/:id`. */
  url: string;
  auth: Auth;
  summary: string;
  tag: string;
  params?: P;
  query?: Q;
  body?: B;
  responses: Record<number, ResponseSpec>;
}

export interface RouteContext<P, Q, B> {
  params: P;
  query: Q;
  body: B;
  caller: Caller;
  request: FastifyRequest;
  reply: FastifyReply;
}

/** What the OpenAPI generator reads. */
export type RegisteredRoute = RouteSpec<z.ZodType, z.ZodType, z.ZodType>;

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
    this.routes.push(spec as unknown as RegisteredRoute);
    const successStatus = Number(Object.keys(spec.responses).find((s) => Number(s) < 300) ?? 200);
    this.app.route({
      method: spec.method,
      url: spec.url,
      handler: async (request, reply) => {
        // Authentication first: an unauthenticated caller learns nothing about the body's shape.
        const caller = await this.authenticate(request, spec.auth);
        const params = parse('path', spec.params, request.params);
        const query = parse('query', spec.query, request.query);
        const body = parse('body', spec.body, request.body);
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

function parse<S extends z.ZodType>(where: string, schema: S | undefined, value: unknown): z.output<S> {
  if (!schema) return value as z.output<S>;
  const parsed = schema.safeParse(value ?? (where === 'body' ? undefined : {}));
  if (parsed.success) return parsed.data;
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
    if (err instanceof HttpError) {
      const body: ErrorBody = {
        error: { message: err.message, ...(err.fields ? { fields: err.fields } : {}) },
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
