// Server-sent events for `stream: true`: the provider's chunks go to the caller as they arrive, in
// OpenAI's framing (`data: {...}` per chunk, then `data: [DONE]`). The provider is always asked for
// `stream_options.include_usage`, so the final chunk carries the usage to meter; the caller only sees
// that chunk if it asked for it too.
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { ChatCompletionChunk, ChatProvider } from '../provider.ts';
import type { ChatRequestBody } from './request.ts';
import { providerFailure } from './request.ts';

export interface StreamUsage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

export interface StreamChatOptions {
  provider: ChatProvider;
  body: ChatRequestBody;
  request: FastifyRequest;
  reply: FastifyReply;
  /**
   * Meters the call from the provider's final usage chunk. Called once, after the provider finished,
   * also when the caller went away mid-stream (the provider's stream is read to its end, so what it
   * produced is known exactly). Not called when the provider's stream broke before its usage came.
   */
  meter(usage: StreamUsage): Promise<void>;
}

export interface StreamOutcome {
  usage: StreamUsage | null;
  /** The caller disconnected before the end. */
  clientGone: boolean;
  /** The provider's stream failed after it started (the caller got an error event). */
  failed: boolean;
}

/**
 * Starts the provider's stream (its refusals are thrown before anything is written, so they leave as
 * ordinary JSON errors), then hijacks the reply and relays each chunk with the caller's model name.
 */
export async function streamChat(opts: StreamChatOptions): Promise<StreamOutcome> {
  const { body, reply, request } = opts;
  const callerWantsUsage = body.stream_options?.include_usage === true;
  const params = {
    ...body,
    stream: true as const,
    stream_options: { ...(body.stream_options ?? {}), include_usage: true },
  };
  let chunks: AsyncIterable<ChatCompletionChunk>;
  try {
    chunks = await opts.provider.streamChatCompletion(params);
  } catch (err) {
    throw providerFailure(err);
  }

  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache',
    connection: 'keep-alive',
    'x-accel-buffering': 'no',
    // Set before the hijack (an alias served this call): Fastify's own headers are not sent after it.
    ...(reply.hasHeader('x-tuneline-alias')
      ? { 'x-tuneline-alias': String(reply.getHeader('x-tuneline-alias')) }
      : {}),
  });
  let clientGone = false;
  res.on('close', () => {
    if (!res.writableFinished) clientGone = true;
  });
  const send = async (data: string) => {
    if (clientGone || res.destroyed) return;
    if (!res.write(`data: ${data}\n\n`)) {
      // Back-pressure: wait for the caller to read, or for it to go away.
      await new Promise<void>((resolve) => {
        const done = () => {
          res.off('drain', done);
          res.off('close', done);
          resolve();
        };
        res.on('drain', done);
        res.on('close', done);
      });
    }
  };

  let usage: StreamUsage | null = null;
  let failed = false;
  try {
    for await (const chunk of chunks) {
      if (chunk.usage) usage = chunk.usage;
      if (clientGone) continue; // keep reading: the provider's usage chunk is what gets metered
      const out: Record<string, unknown> = { ...chunk, model: body.model };
      if (!callerWantsUsage) {
        if (chunk.usage && chunk.choices.length === 0) continue;
        delete out.usage;
      }
      await send(JSON.stringify(out));
    }
    await send('[DONE]');
  } catch (err) {
    failed = true;
    const error = providerFailure(err);
    request.log.warn({ err }, 'provider stream failed mid-way');
    await send(
      JSON.stringify({
        error: {
          message: error.message,
          type: error.openai?.type ?? 'server_error',
          param: error.openai?.param ?? null,
          code: error.openai?.code ?? null,
        },
      }),
    );
  } finally {
    if (!res.destroyed) res.end();
  }
  if (usage) {
    try {
      await opts.meter(usage);
    } catch (err) {
      // The caller already has its answer; the metering path owns recovery (see routes/inference.ts).
      request.log.error({ err, usage }, 'metering a streamed completion failed');
    }
  } else if (!failed) {
    request.log.warn('provider stream ended without a usage chunk: nothing metered');
  }
  return { usage, clientGone, failed };
}
