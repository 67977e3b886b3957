// Which Azure Resource Manager account the deployments of Azure fine-tunes go to, from the environment.
// Without real credentials the simulator serves ARM at its origin (the same stand-in as every dialect).
import {
  type AzureManagementSettings,
  azureCredentialFromEnv,
  staticTokenCredential,
} from './azure-deployments.ts';
import { type ProviderEnv, resolveProviderSettings } from './config.ts';

export type AzureManagementConfig =
  | { ok: true; settings: AzureManagementSettings }
  | { ok: false; problem: string };

/** `https://<account>.openai.azure.com/` (or `.cognitiveservices.azure.com`) → `<account>`. */
function accountOfEndpoint(endpoint: string | undefined): string | undefined {
  if (!endpoint) return undefined;
  const host = new URL(endpoint).hostname;
  const match = /^([a-z0-9-]+)\.(openai|cognitiveservices)\.azure\.com$/i.exec(host);
  return match?.[1];
}

/**
 * The ARM settings for Azure deployments, or why there are none (a sentence naming the variables to
 * set). Real Azure needs AZURE_SUBSCRIPTION_ID and AZURE_RESOURCE_GROUP beside the Azure OpenAI endpoint
 * and key; with no real provider credentials at all, the simulator's ARM routes stand in.
 */
export function azureManagementFromEnv(
  env: ProviderEnv,
  opts: { pollIntervalMs?: number } = {},
): AzureManagementConfig {
  const deployment = { skuName: env.AZURE_DEPLOYMENT_SKU, capacity: env.AZURE_DEPLOYMENT_CAPACITY, ...opts };
  if (resolveProviderSettings(env).kind === 'simulator') {
    return {
      ok: true,
      settings: {
        subscriptionId: 'simulator',
        resourceGroup: 'simulator',
        accountName: 'simulator',
        credential: staticTokenCredential(env.SIMULATOR_API_KEY),
        endpoint: new URL(env.SIMULATOR_URL).origin,
        ...deployment,
      },
    };
  }
  if (!env.AZURE_OPENAI_ENDPOINT || !env.AZURE_OPENAI_API_KEY)
    return {
      ok: false,
      problem:
        'provider "azure" is not configured in this deployment (set AZURE_OPENAI_ENDPOINT and AZURE_OPENAI_API_KEY)',
    };
  const accountName = env.AZURE_OPENAI_ACCOUNT ?? accountOfEndpoint(env.AZURE_OPENAI_ENDPOINT);
  const missing = [
    !env.AZURE_SUBSCRIPTION_ID && 'AZURE_SUBSCRIPTION_ID',
    !env.AZURE_RESOURCE_GROUP && 'AZURE_RESOURCE_GROUP',
    !accountName && 'AZURE_OPENAI_ACCOUNT',
  ].filter(Boolean);
  if (missing.length)
    return {
      ok: false,
      problem: `Azure deployments are not configured: set ${missing.join(', ')} (an Azure fine-tune serves nothing until deployed)`,
    };
  return {
    ok: true,
    settings: {
      subscriptionId: env.AZURE_SUBSCRIPTION_ID as string,
      resourceGroup: env.AZURE_RESOURCE_GROUP as string,
      accountName: accountName as string,
      credential: azureCredentialFromEnv({
        AZURE_TENANT_ID: env.AZURE_TENANT_ID,
        AZURE_CLIENT_ID: env.AZURE_CLIENT_ID,
        AZURE_CLIENT_SECRET: env.AZURE_CLIENT_SECRET,
      }),
      ...(env.AZURE_MANAGEMENT_ENDPOINT ? { endpoint: env.AZURE_MANAGEMENT_ENDPOINT } : {}),
      ...deployment,
    },
  };
}

/**
 * Whether a fine-tune of `provider` (null: the deployment default, `defaultKind`) must be deployed to
 * serve anything: Azure's fine-tunes must (activation deploys them), the other providers serve at once.
 */
export function servesOnlyWhenDeployed(provider: string | null, defaultKind: string): boolean {
  return (provider ?? defaultKind) === 'azure';
}
