# One image for every Tuneline process; the command picks the role:
#   ["service", "<name>"]  one stage worker      ["migrate"]  migrations      ["sim", ...]  simulator
FROM node:20-bookworm-slim AS deps
WORKDIR /app
RUN npm install -g pnpm@10.34.8
COPY pnpm-lock.yaml pnpm-workspace.yaml package.json ./
COPY packages ./packages
COPY services ./services
RUN pnpm install --frozen-lockfile

FROM node:20-bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends tini && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=deps --chown=node:node /app /app
RUN mkdir -p /data && chown node:node /data
USER node
ENV NODE_ENV=production
# tini is PID 1 and forwards SIGTERM, so each worker drains its jobs on `docker stop`.
ENTRYPOINT ["/usr/bin/tini", "--", "/app/docker-entrypoint.sh"]
