import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createStorage, type DatasetStorage, type StorageEnv, storageEnvSchema } from '@tuneline/dataset';
import S3rver from 's3rver';

/**
 * A real S3-protocol server (s3rver, pure JavaScript) on loopback, started by the test that needs it,
 * with one bucket. `env` is what a worker's environment would say to use it.
 */
export interface S3TestServer {
  url: string;
  bucket: string;
  dir: string;
  env: Record<string, string>;
  config: StorageEnv;
  storage(): Promise<DatasetStorage>;
  close(): Promise<void>;
}

export async function startS3Server(bucket = 'tuneline-test'): Promise<S3TestServer> {
  const dir = mkdtempSync(join(tmpdir(), 'tuneline-s3-'));
  const server = new S3rver({
    address: '127.0.0.1',
    port: 0,
    silent: true,
    directory: dir,
    configureBuckets: [{ name: bucket }],
  });
  const { port } = await server.run();
  const url = `http://127.0.0.1:${port}`;
  // s3rver accepts any signature made with its default key pair.
  const env = {
    STORAGE_BACKEND: 's3',
    S3_ENDPOINT: url,
    S3_BUCKET: bucket,
    S3_REGION: 'us-east-1',
    S3_ACCESS_KEY_ID: 'S3RVER',
    S3_SECRET_ACCESS_KEY: 'S3RVER',
    S3_FORCE_PATH_STYLE: 'true',
    S3_PART_SIZE_MB: '5',
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
  };
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
  const config = storageEnvSchema.parse(env);
  return {
    url,
    bucket,
    dir,
    env,
    config,
    storage: () => createStorage(config),
    close: async () => {
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
