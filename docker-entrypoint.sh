#!/bin/sh
# Picks the process to run from the container command (see Dockerfile).
set -e
case "$1" in
  service) exec node --import tsx "/app/services/$2/src/main.ts" ;;
  *) exec node /app/packages/cli/bin/tuneline.mjs "$@" ;;
esac
