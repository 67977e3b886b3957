import { PassThrough, Readable, Writable } from 'node:stream';
import type { S3Client, S3ClientConfig } from '@aws-sdk/client-s3';
import { z } from 'zod';
import {
  checkedRead,
  type DatasetStorage,
  LocalFileStorage,
  missingObject,
  type ReadOptions,
  StorageError,
} from './storage.ts';

/**
 * The AWS SDK, loaded on first use: a service on the local backend (the default) never pays its
 * start-up time (about 0.2–0.3 s of module loading).
 */
async function importSdk() {
  const [s3, storage] = await Promise.all([import('@aws-sdk/client-s3'), import('@aws-sdk/lib-storage')]);
  return { ...s3, Upload: storage.Upload };
}
type Sdk = Awaited<ReturnType<typeof importSdk>>;
let sdkLoading: Promise<Sdk> | undefined;
export const loadS3Sdk = (): Promise<Sdk> => {
  sdkLoading ??= importSdk();
  return sdkLoading;
};

export interface S3StorageOptions {
  client: S3Client;
  bucket: string;
  /** Prepended to every key (`tuneline/` puts the files under that folder of a shared bucket). */
  prefix?: string;
  /** Multipart part size (S3's minimum is 5 MiB); smaller objects go up in one PutObject. */
  partSizeBytes?: number;
  /** Parts uploaded at once by one write (memory: partSize × this). */
  queueSize?: number;
}

const MIB = 1024 * 1024;
/** How much a write stream buffers before asking the writer to wait (as LocalFileStorage). */
const WRITE_BUFFER_BYTES = MIB;

const isNotFound = (err: unknown): boolean => {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } } | undefined;
  return e?.name === 'NotFound' || e?.name === 'NoSuchKey' || e?.$metadata?.httpStatusCode === 404;
};

/**
 * Objects in an S3-compatible bucket (AWS S3, MinIO, Cloudflare R2, ...). Writes stream through
 * lib-storage's Upload: one PutObject below the part size, a multipart upload above it. Either way the
 * object appears under its key only when the write completed (S3 makes a multipart upload visible on
 * CompleteMultipartUpload); a failed or destroyed write aborts its upload, and one whose process died
 * leaves an incomplete multipart upload that no read sees (a bucket lifecycle rule
 * `AbortIncompleteMultipartUpload` removes its parts).
 */
export class S3Storage implements DatasetStorage {
  readonly bucket: string;
  private readonly client: S3Client;
  private readonly prefix: string;
  private readonly partSizeBytes: number;
  private readonly queueSize: number;

  /** The storage, once the SDK is loaded. */
  static async create(opts: S3StorageOptions): Promise<S3Storage> {
    return new S3Storage(await loadS3Sdk(), opts);
  }

  private constructor(
    private readonly sdk: Sdk,
    opts: S3StorageOptions,
  ) {
    this.client = opts.client;
    this.bucket = opts.bucket;
    this.prefix = opts.prefix ?? '';
    this.partSizeBytes = opts.partSizeBytes ?? 8 * MIB;
    this.queueSize = opts.queueSize ?? 2;
  }

  /** The object key of a storage key (checked like LocalFileStorage's: relative, no `..`). */
  objectKey(key: string): string {
    if (!key || key.startsWith('/') || key.split(/[\\/]/).includes('..')) {
      throw new Error(`storage key "${key}" must be a relative path without ".."`);
    }
    return `${this.prefix}${key}`;
  }

  path(key: string): string {
    return `s3://${this.bucket}/${this.objectKey(key)}`;
  }

  createWriteStream(key: string): Writable {
    const body = new PassThrough({ highWaterMark: WRITE_BUFFER_BYTES });
    const upload = new this.sdk.Upload({
      client: this.client,
      params: { Bucket: this.bucket, Key: this.objectKey(key), Body: body, ContentType: 'application/jsonl' },
      partSize: this.partSizeBytes,
      queueSize: this.queueSize,
      leavePartsOnError: false,
    });
    let completed = false;
    const done = upload.done().then(() => {
      completed = true;
    });
    const out = new Writable({
      highWaterMark: WRITE_BUFFER_BYTES,
      write(chunk: Buffer, _enc, cb) {
        // A copy: the upload holds on to what it is given until its part is sent, while the caller may
        // reuse its buffer once this callback ran (LineWriter does).
        if (body.write(Buffer.from(chunk))) cb();
        else body.once('drain', () => cb());
      },
      final(cb) {
        body.end();
        done.then(() => cb(), cb);
      },
      destroy(err, cb) {
        if (completed) return cb(err);
        body.destroy();
        upload.abort().then(
          () => cb(err),
          () => cb(err),
        );
      },
    });
    // An upload that fails on its own (the store unreachable, access denied) fails the writer, which
    // would otherwise wait for a 'drain' that never comes.
    done.catch((err: Error) => out.destroy(err));
    return out;
  }

  openRead(key: string, opts: ReadOptions = {}): Readable {
    const where = this.path(key);
    const command = new this.sdk.GetObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key) });
    const client = this.client;
    async function* chunks(): AsyncGenerator<Buffer> {
      const res = await client.send(command);
      if (!res.Body) throw new StorageError('storage_missing', `dataset file ${where} has no body`);
      yield* res.Body as Readable;
    }
    return checkedRead(Readable.from(chunks(), { objectMode: false }), where, opts.sha256, (err) =>
      isNotFound(err) ? missingObject(where, err) : err,
    );
  }

  async stat(key: string): Promise<{ size: number }> {
    try {
      const head = await this.client.send(
        new this.sdk.HeadObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key) }),
      );
      return { size: head.ContentLength ?? 0 };
    } catch (err) {
      throw isNotFound(err) ? missingObject(this.path(key), err) : err;
    }
  }

  async remove(key: string): Promise<void> {
    await this.client.send(
      new this.sdk.DeleteObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key) }),
    );
  }
}

const flag = z
  .enum(['true', 'false', '1', '0'])
  .default('false')
  .transform((v) => v === 'true' || v === '1');
/** An empty value counts as unset (compose's `${S3_ENDPOINT-...}` set to nothing, for AWS S3). */
const unsetIfEmpty = <T extends z.ZodType>(schema: T) =>
  z.preprocess((v) => (v === '' ? undefined : v), schema);

/**
 * Where the workers that hand each other files (dataset builder → uploader) keep them. `local` (the
 * default: demo, single-host compose) is a directory; `s3` is a bucket of any S3-compatible store.
 * Spread into each such service's config schema.
 */
export const storageEnvSchema = z.object({
  STORAGE_BACKEND: z.enum(['local', 's3']).default('local'),
  /** `local`: the directory (default `<repo>/.tuneline/storage`). */
  STORAGE_DIR: z.string().min(1).optional(),
  /** `s3`: the bucket (required). */
  S3_BUCKET: unsetIfEmpty(z.string().min(3).max(63).optional()),
  /** `s3`: the endpoint of a non-AWS store (MinIO, R2); unset for AWS S3. */
  S3_ENDPOINT: unsetIfEmpty(z.url({ message: 'must be an http(s):// URL' }).optional()),
  S3_REGION: z.string().min(1).default('us-east-1'),
  /** `s3`: static credentials; unset, the SDK's default chain (IAM role, web identity, profile). */
  S3_ACCESS_KEY_ID: unsetIfEmpty(z.string().min(1).optional()),
  S3_SECRET_ACCESS_KEY: unsetIfEmpty(z.string().min(1).optional()),
  /** `s3`: `true` for path-style URLs (MinIO and most self-hosted stores). */
  S3_FORCE_PATH_STYLE: flag,
  /** `s3`: prepended to every object key, e.g. `tuneline/`. */
  S3_PREFIX: z.string().default(''),
  /** `s3`: multipart part size in MiB (5–512). */
  S3_PART_SIZE_MB: z.coerce.number().int().min(5).max(512).default(8),
});
export type StorageEnv = z.infer<typeof storageEnvSchema>;

/** The storage a service's parsed config names. Throws a clear error for an incomplete `s3` setting. */
export async function createStorage(config: StorageEnv): Promise<DatasetStorage> {
  if (config.STORAGE_BACKEND === 'local') return new LocalFileStorage(config.STORAGE_DIR);
  if (!config.S3_BUCKET)
    throw new Error('Invalid configuration: S3_BUCKET: required when STORAGE_BACKEND=s3');
  if (!config.S3_ACCESS_KEY_ID !== !config.S3_SECRET_ACCESS_KEY) {
    throw new Error(
      'Invalid configuration: S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY: set both or neither (neither: the SDK default credential chain)',
    );
  }
  return S3Storage.create({
    client: await createS3Client(config),
    bucket: config.S3_BUCKET,
    prefix: config.S3_PREFIX,
    partSizeBytes: config.S3_PART_SIZE_MB * MIB,
  });
}

export async function createS3Client(config: StorageEnv): Promise<S3Client> {
  const { S3Client } = await loadS3Sdk();
  const options: S3ClientConfig = {
    region: config.S3_REGION,
    forcePathStyle: config.S3_FORCE_PATH_STYLE,
    // Checksums only where S3 requires them: MinIO, R2 and older stores reject or ignore the newer
    // default ones; our own SHA-256 of each file is checked on read.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  };
  if (config.S3_ENDPOINT) options.endpoint = config.S3_ENDPOINT;
  if (config.S3_ACCESS_KEY_ID && config.S3_SECRET_ACCESS_KEY) {
    options.credentials = {
      accessKeyId: config.S3_ACCESS_KEY_ID,
      secretAccessKey: config.S3_SECRET_ACCESS_KEY,
    };
  }
  return new S3Client(options);
}
