// Azure deployments through @azure/arm-cognitiveservices against the simulator's ARM routes: a
// fine-tuned model deployed (deploying → active), served by deployment name through the azure profile,
// deleted, and deleted by Azure when idle; provisioning states map, unknown ones fail clearly.
import {
  AzureDeployments,
  azureCredentialFromEnv,
  azureDeploymentName,
  azureManagementFromEnv,
  createProvider,
  DEPLOYMENT_PROVISIONING_STATES,
  deploymentState,
  ProviderError,
  providerEnvSchema,
  staticTokenCredential,
} from '@tuneline/provider';
import { type RunningSimulator, startSimulator } from '@tuneline/simulator';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../support/context.ts';
import { trainSimulatorModel } from '../support/simulator-models.ts';

let sim: RunningSimulator;
let deployments: AzureDeployments;
let model: string;

beforeAll(async () => {
  sim = await startSimulator({ port: 0, seed: 31, speed: 5_000 });
  deployments = new AzureDeployments({
    subscriptionId: 'sub-1',
    resourceGroup: 'rg-1',
    accountName: 'tuneline-aoai',
    credential: staticTokenCredential(sim.apiKey),
    endpoint: sim.baseUrl,
    pollIntervalMs: 20,
  });
  model = await trainSimulatorModel(sim, {
    suffix: 'azure',
    examples: Array.from({ length: 10 }, (_, i) => [
      { role: 'user', content: `Invoice ${i} total ${i}.00` },
      { role: 'assistant', content: JSON.stringify({ total: i }) },
    ]),
  });
});

afterAll(async () => {
  await sim?.close();
});

describe('azure deployments', () => {
  it('maps provisioning states to deploying / active / deleting / failed, and refuses unknown ones', () => {
    // Every value of the SDK's KnownDeploymentProvisioningState (8.1), plus ARM's Updating.
    const known = [
      'Accepted',
      'Creating',
      'Deleting',
      'Moving',
      'Failed',
      'Succeeded',
      'Disabled',
      'Canceled',
    ];
    for (const s of known) expect(Object.hasOwn(DEPLOYMENT_PROVISIONING_STATES, s)).toBe(true);
    const states = {
      Creating: 'deploying',
      Accepted: 'deploying',
      Updating: 'deploying',
      Succeeded: 'active',
      Deleting: 'deleting',
      Failed: 'failed',
      Disabled: 'failed',
    };
    const mapped = Object.fromEntries(Object.keys(states).map((s) => [s, deploymentState(s)]));
    expect(mapped).toEqual(states);
    expect(() => deploymentState('Hibernating')).toThrow(ProviderError);
    expect(() => deploymentState(undefined)).toThrow(/unknown deployment provisioning state/);
  });

  it('starts a deployment without waiting: a worker follows it from deploying to active', async () => {
    const name = azureDeploymentName('00000000-0000-4000-8000-000000000001');
    expect(name).toMatch(/^[A-Za-z0-9._-]{2,64}$/);
    try {
      await deployments.start(name, model);
      // The PUT was accepted: the deployment exists, provisioning (Creating) or already done.
      expect(['deploying', 'active']).toContain((await deployments.get(name))?.state);
      await waitFor(async () => (await deployments.get(name))?.state === 'active', 10_000, 'active');
      // Starting again (a retried worker) is the same deployment.
      await deployments.start(name, model);
      expect(sim.admin.azureDeployments().filter((d) => d.name === name)).toHaveLength(1);
    } finally {
      await deployments.remove(name);
    }
  });

  it('takes the ARM account from env, naming what is missing', () => {
    const parse = (env: Record<string, string>) => azureManagementFromEnv(providerEnvSchema.parse(env));
    const azure = { AZURE_OPENAI_ENDPOINT: 'https://acme-aoai.openai.azure.com/', AZURE_OPENAI_API_KEY: 'k' };
    const missing = parse(azure);
    expect(missing.ok).toBe(false);
    if (!missing.ok)
      expect(missing.problem).toMatch(/AZURE_SUBSCRIPTION_ID, AZURE_RESOURCE_GROUP$|AZURE_RESOURCE_GROUP \(/);
    const full = parse({ ...azure, AZURE_SUBSCRIPTION_ID: 's', AZURE_RESOURCE_GROUP: 'rg' });
    expect(full.ok && full.settings.accountName).toBe('acme-aoai');
    const openaiOnly = parse({ OPENAI_API_KEY: 'sk' });
    expect(!openaiOnly.ok && openaiOnly.problem).toMatch(/AZURE_OPENAI_ENDPOINT/);
    const simulator = parse({ SIMULATOR_URL: 'http://127.0.0.1:4010/v1' });
    expect(simulator.ok && simulator.settings.endpoint).toBe('http://127.0.0.1:4010');
  });

  it('deploys a fine-tune, waits until active, serves it by deployment name, and deletes it', async () => {
    expect(await deployments.get('ft-invoices')).toBeNull();
    const deployed = await deployments.deploy('ft-invoices', model);
    expect(deployed).toMatchObject({
      name: 'ft-invoices',
      model,
      state: 'active',
      provisioningState: 'Succeeded',
    });
    expect(sim.admin.azureDeployments()).toEqual([
      { name: 'ft-invoices', model, provisioningState: 'Succeeded' },
    ]);
    const azure = createProvider(
      providerEnvSchema.parse({
        PROVIDER: 'azure',
        AZURE_OPENAI_ENDPOINT: sim.baseUrl,
        AZURE_OPENAI_API_KEY: sim.apiKey,
      }),
    );
    const answer = await azure.chatCompletion({
      model: 'ft-invoices',
      messages: [{ role: 'user', content: 'Invoice 3 total 3.00' }],
    });
    expect(answer.content).toContain('total');
    // Deploying again is the same deployment.
    expect((await deployments.deploy('ft-invoices', model)).state).toBe('active');
    await deployments.remove('ft-invoices');
    expect(await deployments.get('ft-invoices')).toBeNull();
    await deployments.remove('ft-invoices'); // already gone: fine
  });

  it('reports a deployment of a model the account lacks as failed', async () => {
    const d = await deployments.deploy('ft-missing', 'gpt-4o-mini-2024-07-18:ft-nobody:none:x');
    expect(d.state).toBe('failed');
  });

  it("notices Azure's idle deletion: the deployment is gone", async () => {
    await deployments.deploy('ft-idle', model);
    expect(sim.admin.idleDelete('ft-idle')).toBe(true);
    expect(await deployments.get('ft-idle')).toBeNull();
  });

  it('takes its credential from env: a client secret needs tenant and client', () => {
    expect(() => azureCredentialFromEnv({ AZURE_CLIENT_SECRET: 's' })).toThrow(
      /AZURE_TENANT_ID and AZURE_CLIENT_ID/,
    );
    expect(
      azureCredentialFromEnv({ AZURE_TENANT_ID: 't', AZURE_CLIENT_ID: 'c', AZURE_CLIENT_SECRET: 's' })
        .constructor.name,
    ).toBe('ClientSecretCredential');
    expect(azureCredentialFromEnv({}).constructor.name).toBe('ManagedIdentityCredential');
  });
});
