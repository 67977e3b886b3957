// Azure OpenAI deployments through Azure Resource Manager, with Microsoft's own packages:
// `@azure/arm-cognitiveservices` for the deployments and `@azure/identity` for the credential (a client
// secret, or a managed identity). On Azure a fine-tuned model serves nothing until it is deployed, and
// a deployment costs an hourly hosting fee until it is deleted.
import { CognitiveServicesManagementClient } from '@azure/arm-cognitiveservices';
import type { TokenCredential } from '@azure/core-auth';
import { ClientSecretCredential, ManagedIdentityCredential } from '@azure/identity';
import { ConfigError } from '@tuneline/contracts';
import { ProviderError, providerErrorKind } from './errors.ts';

export type DeploymentState = 'deploying' | 'active' | 'deleting' | 'failed';

export interface AzureDeployment {
  name: string;
  model: string;
  state: DeploymentState;
  provisioningState: string;
}

export interface AzureManagementSettings {
  subscriptionId: string;
  resourceGroup: string;
  /** The Azure OpenAI (Cognitive Services) account name. */
  accountName: string;
  credential: TokenCredential;
  /** ARM endpoint (default https://management.azure.com); the simulator serves it too. */
  endpoint?: string;
  skuName?: string;
  capacity?: number;
  /** How often a long-running operation is polled (the SDK's default is 30 s at Azure). */
  pollIntervalMs?: number;
}

/**
 * ARM's provisioning states of a deployment (the SDK's `KnownDeploymentProvisioningState`, plus
 * `Updating`, which ARM resources report while a PUT changes them) as what the API and hub show.
 */
export const DEPLOYMENT_PROVISIONING_STATES: Readonly<Record<string, DeploymentState>> = {
  Accepted: 'deploying',
  Creating: 'deploying',
  Updating: 'deploying',
  Moving: 'deploying',
  Succeeded: 'active',
  Deleting: 'deleting',
  Failed: 'failed',
  Canceled: 'failed',
  // A disabled deployment serves nothing (Azure disables them, e.g. on a suspended subscription).
  Disabled: 'failed',
};

/** ARM's provisioning state as ours: deploying → active (or failed); an unknown one throws. */
export function deploymentState(provisioningState: string | undefined): DeploymentState {
  if (provisioningState !== undefined && Object.hasOwn(DEPLOYMENT_PROVISIONING_STATES, provisioningState))
    return DEPLOYMENT_PROVISIONING_STATES[provisioningState] as DeploymentState;
  throw new ProviderError(
    'rejected',
    `azure: unknown deployment provisioning state "${provisioningState}" (known: ${Object.keys(DEPLOYMENT_PROVISIONING_STATES).join(', ')}); update the azure deployments mapping`,
  );
}

/**
 * The deployment name of a fine-tune: deterministic, so activating twice (or a worker retrying after a
 * crash) finds the same deployment instead of making a second one. ARM allows 2-64 characters of
 * letters, digits, '-', '_' and '.'; `tl-` and a UUID are 39.
 */
export function azureDeploymentName(fineTuneId: string): string {
  return `tl-${fineTuneId}`;
}

/**
 * A credential that sends a fixed token: for an ARM endpoint without Entra ID (the simulator). Real
 * Azure takes `ClientSecretCredential` or `ManagedIdentityCredential` (see `azureCredentialFromEnv`).
 */
export function staticTokenCredential(token: string): TokenCredential {
  return { getToken: async () => ({ token, expiresOnTimestamp: Date.now() + 3_600_000 }) };
}

/**
 * The credential from the environment: `AZURE_TENANT_ID` + `AZURE_CLIENT_ID` + `AZURE_CLIENT_SECRET` (a
 * service principal), else a managed identity (`AZURE_CLIENT_ID` picks a user-assigned one).
 */
export function azureCredentialFromEnv(env: Record<string, string | undefined>): TokenCredential {
  const { AZURE_TENANT_ID: tenant, AZURE_CLIENT_ID: client, AZURE_CLIENT_SECRET: secret } = env;
  if (secret) {
    if (!tenant || !client)
      throw new ConfigError(
        'Invalid configuration: AZURE_CLIENT_SECRET needs AZURE_TENANT_ID and AZURE_CLIENT_ID',
      );
    return new ClientSecretCredential(tenant, client, secret);
  }
  return client ? new ManagedIdentityCredential({ clientId: client }) : new ManagedIdentityCredential();
}

const BEARER_POLICY = 'bearerTokenAuthenticationPolicy';

export class AzureDeployments {
  private readonly client: CognitiveServicesManagementClient;

  constructor(private readonly settings: AzureManagementSettings) {
    const endpoint = settings.endpoint ?? 'https://management.azure.com';
    this.client = new CognitiveServicesManagementClient(settings.credential, settings.subscriptionId, {
      endpoint,
      $host: endpoint,
    });
    if (endpoint.startsWith('http://')) {
      // The SDK's bearer policy refuses plain HTTP (a local ARM stand-in): send the token ourselves.
      this.client.pipeline.removePolicy({ name: BEARER_POLICY });
      this.client.pipeline.addPolicy({
        name: 'tunelineLocalBearer',
        sendRequest: async (request, next) => {
          const token = await settings.credential.getToken(`${endpoint}/.default`);
          if (token) request.headers.set('authorization', `Bearer ${token.token}`);
          request.allowInsecureConnection = true;
          return next(request);
        },
      });
    }
  }

  private get poll() {
    return { updateIntervalInMs: this.settings.pollIntervalMs ?? 10_000 };
  }

  private body(model: string) {
    return {
      sku: { name: this.settings.skuName ?? 'Standard', capacity: this.settings.capacity ?? 1 },
      properties: { model: { format: 'OpenAI', name: model, version: '1' } },
    };
  }

  /**
   * Asks ARM to create (or update) the deployment and returns once the PUT is accepted, without waiting
   * for provisioning: a worker follows it with `get` (the SDK's poller sends the PUT before it returns).
   */
  async start(name: string, model: string): Promise<void> {
    const { resourceGroup, accountName } = this.settings;
    await withArmErrors(() =>
      this.client.deployments.beginCreateOrUpdate(
        resourceGroup,
        accountName,
        name,
        this.body(model),
        this.poll,
      ),
    );
  }

  /** Creates (or finds) the deployment of `model` and waits until ARM says it succeeded or failed. */
  async deploy(name: string, model: string): Promise<AzureDeployment> {
    const { resourceGroup, accountName } = this.settings;
    const result = await withArmErrors(() =>
      this.client.deployments.beginCreateOrUpdateAndWait(
        resourceGroup,
        accountName,
        name,
        this.body(model),
        this.poll,
      ),
    ).catch(async (err: unknown) => {
      // The SDK reports a deployment that ended `Failed` as a failed operation: read what ARM says.
      const found = await this.get(name).catch(() => null);
      if (found?.state === 'failed') return null;
      throw err;
    });
    if (!result) return { name, model, state: 'failed', provisioningState: 'Failed' };
    return toDeployment(name, result.properties?.model?.name ?? model, result.properties?.provisioningState);
  }

  /** The deployment, or null when it does not exist (never made, deleted, or deleted by Azure when idle). */
  async get(name: string): Promise<AzureDeployment | null> {
    const { resourceGroup, accountName } = this.settings;
    try {
      const d = await withArmErrors(() => this.client.deployments.get(resourceGroup, accountName, name));
      return toDeployment(name, d.properties?.model?.name ?? '', d.properties?.provisioningState);
    } catch (err) {
      if (err instanceof ProviderError && err.kind === 'not_found') return null;
      throw err;
    }
  }

  /** Deletes the deployment (what stops the hosting fee); one already gone is fine. */
  async remove(name: string): Promise<void> {
    const { resourceGroup, accountName } = this.settings;
    await withArmErrors(() =>
      this.client.deployments.beginDeleteAndWait(resourceGroup, accountName, name, this.poll),
    );
  }
}

function toDeployment(name: string, model: string, provisioningState: string | undefined): AzureDeployment {
  return {
    name,
    model,
    state: deploymentState(provisioningState),
    provisioningState: provisioningState ?? '',
  };
}

async function withArmErrors<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    if (err instanceof ProviderError) throw err;
    const status = (err as { statusCode?: number }).statusCode;
    if (status === undefined && !(err as { code?: string }).code) throw err;
    const kind = providerErrorKind(status);
    throw new ProviderError(kind, `azure management (${status ?? 'no answer'}): ${(err as Error).message}`, {
      ...(status === undefined ? {} : { status }),
      cause: err,
    });
  }
}
