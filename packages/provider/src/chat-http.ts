// The gateway's non-streamed chat completion as one plain HTTP request over a keep-alive connection
// pool (node:http / node:https agents), instead of the `openai` SDK over fetch: the body goes out as
// the gateway validated it and the provider's JSON comes back as it is. The SDK's per-call cost (about
// 1 ms of CPU in the gateway bench of issue 19) was most of the gateway's own work. Errors are the same
// ProviderErrors the SDK path gives (kind from the status, the provider's error object and headers).
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { type ProviderSettings, TOGETHER_BASE_URL } from './config.ts';
import { ProviderError, type ProviderErrorBody, providerErrorKind, retryAfterMs } from './errors.ts';
import type { ChatCompletionBody, ChatCompletionParams } from './profile.ts';

export interface ChatHttpClient {
  createChatCompletion(
    params: ChatCompletionParams,
    opts?: { signal?: AbortSignal },
  ): Promise<ChatCompletionBody>;
  /** Closes the pooled connections. */
  close(): void;
}

function headersOf(res: IncomingMessage): Headers {
  const h = new Headers();
  for (const [name, value] of Object.entries(res.headers)) {
    if (value === undefined) continue;
    for (const v of Array.isArray(value) ? value : [value]) h.append(name, v);
  }
  return h;
}

function errorBody(json: unknown): ProviderErrorBody | undefined {
  const e = (json as { error?: Record<string, unknown> } | null)?.error;
  if (!e || typeof e !== 'object' || typeof e.message !== 'string') return undefined;
  const str = (v: unknown) => (typeof v === 'string' ? v : v == null ? null : String(v));
  return { message: e.message, type: str(e.type), param: str(e.param), code: str(e.code) };
}

/** A keep-alive pool to the provider's chat completions endpoint (`maxSockets` connections at most). */
export function createChatHttpClient(
  settings: ProviderSettings,
  opts: { maxSockets?: number } = {},
): ChatHttpClient {
  const azure = settings.kind === 'azure';
  const base = azure
    ? new URL(settings.endpoint)
    : new URL(
        settings.baseURL ?? (settings.kind === 'together' ? TOGETHER_BASE_URL : 'https://api.openai.com/v1'),
      );
  const https = base.protocol === 'https:';
  const agentOptions = { keepAlive: true, maxSockets: opts.maxSockets ?? 256, keepAliveMsecs: 30_000 };
  const agent = https ? new HttpsAgent(agentOptions) : new HttpAgent(agentOptions);
  const send = https ? httpsRequest : httpRequest;
  const basePath = base.pathname.replace(/\/$/, '');
  const authHeaders: Record<string, string> = azure
    ? { 'api-key': settings.apiKey }
    : { authorization: `Bearer ${settings.apiKey}` };
  const timeoutMs = settings.common.timeoutMs;

  const path = (model: string) =>
    azure
      ? `${basePath}/openai/deployments/${encodeURIComponent(model)}/chat/completions?api-version=${encodeURIComponent(
          (settings as { apiVersion: string }).apiVersion,
        )}`
      : `${basePath}/chat/completions`;

  return {
    createChatCompletion(params, callOpts = {}) {
      const payload = JSON.stringify(params);
      return new Promise<ChatCompletionBody>((resolve, reject) => {
        const req = send(
          {
            agent,
            protocol: base.protocol,
            hostname: base.hostname,
            port: base.port || (https ? 443 : 80),
            method: 'POST',
            path: path(params.model),
            headers: {
              ...authHeaders,
              'content-type': 'application/json',
              accept: 'application/json',
              'content-length': Buffer.byteLength(payload),
            },
            ...(callOpts.signal ? { signal: callOpts.signal } : {}),
          },
          (res) => {
            const chunks: Buffer[] = [];
            res.on('data', (c: Buffer) => chunks.push(c));
            res.on('error', (err) =>
              reject(new ProviderError('transient', `provider unreachable: ${err.message}`, { cause: err })),
            );
            res.on('end', () => {
              const status = res.statusCode ?? 0;
              const text = Buffer.concat(chunks).toString('utf8');
              let json: unknown;
              try {
                json = text ? JSON.parse(text) : undefined;
              } catch {
                json = undefined;
              }
              if (status >= 200 && status < 300 && json && typeof json === 'object') {
                resolve(json as ChatCompletionBody);
                return;
              }
              const headers = headersOf(res);
              const kind = providerErrorKind(status);
              const detail = errorBody(json);
              const message = detail?.message ?? (text.slice(0, 200) || `status ${status}`);
              reject(
                new ProviderError(
                  kind,
                  kind === 'rate_limited'
                    ? `provider rate limit (429): ${message}`
                    : kind === 'transient'
                      ? `provider error (${status}): ${message}`
                      : `provider rejected the request (${status}): ${message}`,
                  {
                    status,
                    headers,
                    ...(kind === 'rate_limited' ? { retryAfterMs: retryAfterMs(headers) } : {}),
                    ...(detail ? { providerError: detail } : {}),
                  },
                ),
              );
            });
          },
        );
        req.setTimeout(timeoutMs, () => req.destroy(new Error(`timed out after ${timeoutMs} ms`)));
        req.on('error', (err) =>
          reject(
            err instanceof ProviderError
              ? err
              : new ProviderError('transient', `provider unreachable: ${err.message}`, { cause: err }),
          ),
        );
        req.end(payload);
      });
    },
    close() {
      agent.destroy();
    },
  };
}
