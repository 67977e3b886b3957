import { storageEnvSchema } from '@tuneline/dataset';
import { configSchema as builderConfig } from '@tuneline/dataset-builder/config';
import { configSchema as uploaderConfig } from '@tuneline/uploader/config';
import { describe, expect, it } from 'vitest';
import { readCompose } from './files.ts';

/** `${NAME:-default}` / `${NAME-default}` → what compose gives when NAME is unset; anything else as written. */
const unsetValue = (value: string) => /^\$\{\w+:?-(.*)\}$/.exec(value)?.[1] ?? value;

describe('docker-compose.yml: dataset storage', () => {
  const compose = readCompose();
  const fileWorkers = ['dataset-builder', 'uploader'];

  it('keeps the local volume as the default, and gives both file workers the same storage settings', () => {
    const builder = compose.services['dataset-builder']?.environment ?? {};
    const uploader = compose.services.uploader?.environment ?? {};
    expect(unsetValue(builder.STORAGE_BACKEND ?? '')).toBe('local');
    const storageKeys = Object.keys(storageEnvSchema.shape).filter((k) => k in builder);
    expect(storageKeys).toEqual(expect.arrayContaining(['STORAGE_BACKEND', 'S3_ENDPOINT', 'S3_BUCKET']));
    for (const key of storageKeys) expect(uploader[key], key).toBe(builder[key]);
    for (const name of fileWorkers) {
      expect(compose.services[name]?.volumes, name).toContain('storage:/data/storage');
    }
  });

  it('offers MinIO in the minio profile, its bucket created once, and the workers default to it for s3', () => {
    const minio = compose.services.minio;
    expect(minio?.profiles).toEqual(['minio']);
    expect(minio?.ports).toBeUndefined();
    const init = compose.services['minio-init'];
    expect(init?.profiles).toEqual(['minio']);
    expect(init?.depends_on?.minio?.condition).toBe('service_healthy');
    expect(init?.restart).toBe('no');
    const env = compose.services['dataset-builder']?.environment ?? {};
    // With STORAGE_BACKEND=s3 and nothing else set, the workers' settings parse and name MinIO's bucket.
    const s3Env = Object.fromEntries(Object.entries(env).map(([k, v]) => [k, unsetValue(v)]));
    s3Env.STORAGE_BACKEND = 's3';
    for (const schema of [builderConfig, uploaderConfig]) {
      const parsed = storageEnvSchema.parse(s3Env);
      expect(parsed).toMatchObject({
        S3_ENDPOINT: 'http://minio:9000',
        S3_FORCE_PATH_STYLE: true,
        S3_ACCESS_KEY_ID: unsetValue(minio?.environment?.MINIO_ROOT_USER ?? ''),
        S3_SECRET_ACCESS_KEY: unsetValue(minio?.environment?.MINIO_ROOT_PASSWORD ?? ''),
      });
      expect(init?.entrypoint?.at(-1)).toBe(`tuneline/${env.S3_BUCKET}`);
      expect(parsed.S3_BUCKET).toBe('tuneline');
      for (const key of Object.keys(storageEnvSchema.shape)) expect(Object.keys(schema.shape)).toContain(key);
    }
    // An empty S3_ENDPOINT (AWS S3) counts as unset.
    expect(storageEnvSchema.parse({ ...s3Env, S3_ENDPOINT: '' }).S3_ENDPOINT).toBeUndefined();
  });
});
