import type { z } from 'zod';
import { licenseOf } from './auth.ts';
import type { Auth, RouteContext, RouteSpec, RouteTable } from './http.ts';

/** A route's context in a group: also the caller's license (401 on a route behind another kind of key). */
export type GroupContext<P, Q, B> = RouteContext<P, Q, B> & { readonly licenseId: string };

/**
 * The routes of one tag behind one kind of key (e.g. a license's fine-tunes): each declares only what is
 * its own (method, URL, summary, schemas, answers), and a license route reads its license from the context.
 */
export function routeGroup(table: RouteTable, auth: Exclude<Auth, 'none'>, tag: string) {
  return {
    add<
      P extends z.ZodType = z.ZodUnknown,
      Q extends z.ZodType = z.ZodUnknown,
      B extends z.ZodType = z.ZodUnknown,
    >(
      spec: Omit<RouteSpec<P, Q, B>, 'auth' | 'tag'>,
      handler: (ctx: GroupContext<z.output<P>, z.output<Q>, z.output<B>>) => Promise<unknown>,
    ): void {
      table.add({ ...spec, auth, tag }, (ctx) =>
        handler({
          ...ctx,
          get licenseId() {
            return licenseOf(ctx.caller);
          },
        }),
      );
    },
  };
}
