// Azure Resource Manager's deployments of an Azure OpenAI (Cognitive Services) account, written from the
// Microsoft.CognitiveServices REST reference: PUT (create or update, answering 201 with
// `provisioningState: Creating` and an `Azure-AsyncOperation`-free resource the SDK polls by GET), GET
// (404 `DeploymentNotFound`), DELETE (200, or 204 when already gone). A deployment moves Creating →
// Succeeded after a simulated minute, or Failed for a model the account does not have. Azure deletes a
// deployment left idle for 15 days: `idleDelete` (admin) does that at once.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Scheduler } from './clock.ts';
import { ApiError } from './errors.ts';

const ARM_PATH =
  '/subscriptions/:subscription/resourceGroups/:group/providers/Microsoft.CognitiveServices/accounts/:account/deployments/:name';

const DEPLOY_MS = 60_000;

export interface SimDeployment {
  id: string;
  name: string;
  model: string;
  sku: { name: string; capacity: number };
  provisioningState: 'Creating' | 'Succeeded' | 'Failed' | 'Deleting';
  createdAt: number;
  timer: (() => void) | null;
}

type Params = { subscription: string; group: string; account: string; name: string };
type Req = FastifyRequest<{ Params: Params; Body: unknown }>;

function armError(status: number, code: string, message: string): ApiError {
  // ARM's envelope is `{error: {code, message}}`; ApiError's body carries both (type stands for code).
  return new ApiError(status, message, code, null, code);
}

export class AzureDeployments {
  readonly deployments = new Map<string, SimDeployment>();
  readonly idleDeleted: string[] = [];

  constructor(
    private readonly scheduler: Scheduler,
    private readonly modelExists: (model: string) => boolean,
  ) {}

  /** The model a deployment serves (chat at `/openai/deployments/{name}/...`), when it is live. */
  modelOf(name: string): string | undefined {
    const d = this.deployments.get(name);
    return d?.provisioningState === 'Succeeded' ? d.model : undefined;
  }

  /** Azure's idle-deletion (15 days without calls): the deployment is gone. */
  idleDelete(name: string): boolean {
    const d = this.deployments.get(name);
    if (!d) return false;
    d.timer?.();
    this.deployments.delete(name);
    this.idleDeleted.push(name);
    return true;
  }

  close(): void {
    for (const d of this.deployments.values()) d.timer?.();
  }

  register(app: FastifyInstance): void {
    const json = (p: Params, d: SimDeployment) => ({
      id: `/subscriptions/${p.subscription}/resourceGroups/${p.group}/providers/Microsoft.CognitiveServices/accounts/${p.account}/deployments/${d.name}`,
      name: d.name,
      type: 'Microsoft.CognitiveServices/accounts/deployments',
      sku: d.sku,
      properties: {
        model: { format: 'OpenAI', name: d.model, version: '1' },
        provisioningState: d.provisioningState,
      },
    });

    app.put(ARM_PATH, async (request: Req, reply) => {
      const p = request.params;
      const body = (request.body ?? {}) as {
        sku?: { name?: string; capacity?: number };
        properties?: { model?: { name?: string; format?: string } };
      };
      const model = body.properties?.model?.name;
      if (!model) throw armError(400, 'InvalidResourceProperties', 'properties.model.name is required.');
      const existing = this.deployments.get(p.name);
      if (existing && existing.model === model && existing.provisioningState !== 'Failed') {
        return json(p, existing);
      }
      existing?.timer?.();
      const d: SimDeployment = {
        id: p.name,
        name: p.name,
        model,
        sku: { name: body.sku?.name ?? 'Standard', capacity: body.sku?.capacity ?? 1 },
        provisioningState: 'Creating',
        createdAt: Date.now(),
        timer: null,
      };
      this.deployments.set(p.name, d);
      d.timer = this.scheduler.after(DEPLOY_MS, () => {
        d.timer = null;
        d.provisioningState = this.modelExists(model) ? 'Succeeded' : 'Failed';
      });
      reply.code(existing ? 200 : 201);
      return json(p, d);
    });

    app.get(ARM_PATH, async (request: Req) => {
      const d = this.deployments.get(request.params.name);
      if (!d) throw armError(404, 'DeploymentNotFound', `Deployment ${request.params.name} not found.`);
      return json(request.params, d);
    });

    app.delete(ARM_PATH, async (request: Req, reply) => {
      const d = this.deployments.get(request.params.name);
      if (!d) return reply.code(204).send();
      d.timer?.();
      this.deployments.delete(request.params.name);
      return reply.code(200).send();
    });
  }
}
