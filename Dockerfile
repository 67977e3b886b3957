# One Dockerfile, one image per Tuneline process; pick it with --target:
#   workers:  dataset-builder  uploader  trainer  poller  billing  evaluator  notifier
#   api       the HTTP API (default target)
#   migrate   `tuneline migrate`, run once before the others
#   simulator `tuneline sim`, the provider simulator for a demo
#   cli       the `tuneline` command line, for ops (`credits grant`, `ledger audit`, ...)
# e.g.  docker build --target trainer -t tuneline/trainer .
#
# Each image holds what `pnpm deploy --prod` produces for its package (its own files, the workspace packages it
# depends on and their production dependencies), including dist/main.js: the process compiled to JavaScript by
# `npm run build` (scripts/build.ts, esbuild), which is what the image runs. No TypeScript is compiled at run
# time and tsx is not in the images. Runs as the non-root `node` user with tini as PID 1, so `node` is tini's
# child and gets SIGTERM on `docker stop` (workers then drain their jobs).
# Needs no BuildKit-only syntax: the classic builder (docker-compose 1.x) builds it too.

ARG NODE_IMAGE=node:20-bookworm-slim

# ---------------------------------------------------------------------------------------------------------
# build: compile every process, then `pnpm deploy` each package into /out/<name>.
FROM ${NODE_IMAGE} AS build
ENV CI=true
RUN npm install -g pnpm@10.34.8
WORKDIR /src
# The lockfile alone decides the store's content: this layer stays cached until a dependency changes. All
# dependencies, development ones included: the build runs esbuild (through tsx). Only this stage has them.
COPY pnpm-lock.yaml pnpm-workspace.yaml ./
RUN pnpm fetch
COPY . .
# No install scripts: the build needs none, and the test tools' native add-ons would want a compiler.
RUN pnpm install --offline --frozen-lockfile --ignore-scripts
# <package>/dist/main.js for the seven workers, the API and the CLI (what `npm run build` runs, without its
# install step: the dependencies are in place).
RUN node --import tsx scripts/build.ts
# pnpm 10 deploys from the shared lockfile only with inject-workspace-packages=true. It is set for the deploy
# alone: the workspace itself keeps linked packages for development, and the lockfile does not record it.
# (--legacy would avoid the setting but, in pnpm 10, also installs the workspace root's dependencies.)
# `build.ts --link` then points the bundle's dist/node_modules at the packages of the deployed tree.
RUN set -eu; \
    for pkg in dataset-builder uploader trainer poller billing evaluator notifier api cli; do \
      pnpm --offline --config.inject-workspace-packages=true --filter "@tuneline/$pkg" deploy --prod "/out/$pkg"; \
      node --import tsx scripts/build.ts --link "/out/$pkg"; \
    done

# ---------------------------------------------------------------------------------------------------------
# runtime: what every image shares.
FROM ${NODE_IMAGE} AS runtime
RUN apt-get update \
    && apt-get install -y --no-install-recommends tini \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir -p /data/storage /data/mail \
    && chown -R node:node /data
# Paths inside the image; the defaults in the code point into a source checkout.
ENV NODE_ENV=production \
    STORAGE_DIR=/data/storage \
    MAIL_OUTBOX_DIR=/data/mail
WORKDIR /app
# The application files stay owned by root: the process can read them, not change them.
USER node
ENTRYPOINT ["/usr/bin/tini", "--"]

# ---------------------------------------------------------------------------------------------------------
# worker: a stage worker, with /livez, /readyz and /metrics on HEALTH_PORT.
FROM runtime AS worker
ENV HEALTH_PORT=9400
EXPOSE 9400
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
    CMD ["node", "-e", "fetch('http://127.0.0.1:' + process.env.HEALTH_PORT + '/readyz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
CMD ["node", "dist/main.js"]

FROM worker AS dataset-builder
COPY --from=build /out/dataset-builder /app

FROM worker AS uploader
COPY --from=build /out/uploader /app

FROM worker AS trainer
COPY --from=build /out/trainer /app

FROM worker AS poller
COPY --from=build /out/poller /app

FROM worker AS billing
COPY --from=build /out/billing /app

FROM worker AS evaluator
COPY --from=build /out/evaluator /app

FROM worker AS notifier
COPY --from=build /out/notifier /app

# ---------------------------------------------------------------------------------------------------------
# cli: the `tuneline` command line; migrate and simulator are this image with another command.
FROM runtime AS cli
COPY --from=build /out/cli /app
CMD ["node", "bin/tuneline.mjs", "--help"]

FROM cli AS migrate
CMD ["node", "bin/tuneline.mjs", "migrate"]

FROM cli AS simulator
EXPOSE 4010
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["node", "-e", "fetch('http://127.0.0.1:4010/_sim/state').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
CMD ["node", "bin/tuneline.mjs", "sim", "--port", "4010", "--host", "0.0.0.0"]

# ---------------------------------------------------------------------------------------------------------
# api: the HTTP API on API_PORT. Last, so a plain `docker build .` builds it.
FROM runtime AS api
COPY --from=build /out/api /app
ENV API_PORT=8080
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
    CMD ["node", "-e", "fetch('http://127.0.0.1:' + process.env.API_PORT + '/readyz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
CMD ["node", "dist/main.js"]
