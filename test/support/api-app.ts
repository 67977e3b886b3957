import { type ApiOptions, buildApi } from '@tuneline/api';
import { defaultCatalogue } from '@tuneline/dataset';
import type { Db } from '@tuneline/db';
import { createRedis } from '@tuneline/runtime';
import { redisUrl } from './context.ts';

// biome-ignore lint/suspicious/noExplicitAny: tests read and walk arbitrary response JSON
type AnyJson = any;

export type TestApp = Awaited<ReturnType<typeof buildApi>>;
type Method = 'GET' | 'POST' | 'DELETE';

/** Injects a request into `app`, with `key` as its bearer key, and reads the answer (JSON when it is). */
export async function injectJson(
  app: Pick<TestApp, 'inject'>,
  method: Method,
  url: string,
  key?: string,
  payload?: unknown,
  headers: Record<string, string> = {},
) {
  const res = await app.inject({
    method,
    url,
    headers: { ...(key ? { authorization: `Bearer ${key}` } : {}), ...headers },
    ...(payload !== undefined ? { payload: payload as object } : {}),
  });
  let json: AnyJson;
  try {
    json = res.json();
  } catch {
    json = undefined;
  }
  return { status: res.statusCode, json, text: res.body, headers: res.headers };
}

/** injectJson on one app. */
export type ApiCall = (
  method: Method,
  url: string,
  key?: string,
  payload?: unknown,
  headers?: Record<string, string>,
) => ReturnType<typeof injectJson>;

export interface ApiUnderTest {
  app: TestApp;
  call: ApiCall;
  /** Closes the app and its Redis connection. */
  close(): Promise<void>;
}

/**
 * The API over `db`, queueing on `prefix`, with the default catalogue and any other `options`, on a
 * producer Redis connection of its own.
 */
export async function startApi(
  db: Db,
  prefix: string,
  options: Omit<ApiOptions, 'db' | 'redis' | 'queuePrefix' | 'catalogue'> = {},
): Promise<ApiUnderTest> {
  const redis = createRedis(redisUrl(), 'producer');
  try {
    const app = await buildApi({ db, redis, queuePrefix: prefix, catalogue: defaultCatalogue, ...options });
    return {
      app,
      call: (...args) => injectJson(app, ...args),
      close: async () => {
        await app.close();
        redis.disconnect();
      },
    };
  } catch (err) {
    redis.disconnect();
    throw err;
  }
}
