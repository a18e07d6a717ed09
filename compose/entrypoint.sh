#!/bin/sh
# The image's one entrypoint: a mode, then `exec` of that process (so it is
# PID 1's only child under tini and receives SIGTERM itself).
#   api      the Fastify API, webhooks, dashboard and MCP over HTTP (default)
#   worker   the BullMQ workers (any number of replicas share one Redis)
#   mcp      the MCP server over stdio (docker run -i --rm … mcp)
#   migrate  apply the Postgres migrations, then exit
#   cli …    the pk-mcp command line (repo add, index, search, token …)
set -eu
app="${PK_APP_DIR:-/app}"
mode="${1:-api}"
[ "$#" -gt 0 ] && shift
case "$mode" in
  api) exec node "$app/dist/api/server.js" "$@" ;;
  worker | workers) exec node "$app/dist/workers/main.js" "$@" ;;
  mcp) exec node "$app/dist/mcp/stdio.js" "$@" ;;
  migrate) exec node "$app/dist/scripts/migrate.js" "$@" ;;
  cli) exec node "$app/dist/scripts/cli.js" "$@" ;;
  -h | --help | help)
    sed -n '2,9p' "$0"
    ;;
  *)
    echo "pk-mcp: unknown mode \"$mode\": use api, worker, mcp, migrate or cli …" >&2
    exit 64
    ;;
esac
