#!/usr/bin/env bash
# Fetches Shopify's published Admin API GraphQL schemas, once, and prints the line the tests
# read:
#
#   eval "$(deploy/local/shopify-schema.sh)"    # PURCHASESYNC_SHOPIFY_SCHEMA_DIR=...
#
# The npm package @shopify/dev-mcp ships one GraphQL introspection result per Admin API
# version as dist/data/admin_<version>.json.gz (gzipped JSON, {"data":{"__schema":...}}).
# The package is pinned below (and in schemacheck.DevMCPVersion; a test keeps them in step);
# only its admin_*.json.gz files are kept, under the git-ignored deploy/local/.cache/.
# With them, the tests check every GraphQL document the Admin API client sends and every
# answer the fake Shopify gives against the schema of the version in use
# (processors/control/shopifyfake/schemacheck). Needs npm (Node.js) and tar.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SHOPIFY_DEV_MCP_VERSION=1.16.0
dir=$ROOT/deploy/local/.cache/shopify-schema/dev-mcp-$SHOPIFY_DEV_MCP_VERSION
if ! compgen -G "$dir/admin_*.json.gz" >/dev/null; then
  command -v npm >/dev/null || { echo "shopify-schema.sh: npm is not installed (apt-get install npm)" >&2; exit 1; }
  tmp=$(mktemp -d "$ROOT/deploy/local/.cache/shopify-schema.XXXXXX" 2>/dev/null ||
    { mkdir -p "$ROOT/deploy/local/.cache" && mktemp -d "$ROOT/deploy/local/.cache/shopify-schema.XXXXXX"; })
  trap 'rm -rf "$tmp"' EXIT
  tgz=$(cd "$tmp" && npm pack --silent "@shopify/dev-mcp@$SHOPIFY_DEV_MCP_VERSION" | tail -n 1) ||
    { echo "shopify-schema.sh: npm pack @shopify/dev-mcp@$SHOPIFY_DEV_MCP_VERSION failed" >&2; exit 1; }
  tar -xzf "$tmp/$tgz" -C "$tmp" --strip-components=3 --wildcards 'package/dist/data/admin_*.json.gz'
  compgen -G "$tmp/admin_*.json.gz" >/dev/null ||
    { echo "shopify-schema.sh: @shopify/dev-mcp@$SHOPIFY_DEV_MCP_VERSION has no dist/data/admin_*.json.gz" >&2; exit 1; }
  rm -f "$tmp/$tgz"
  chmod 755 "$tmp"
  mkdir -p "$(dirname "$dir")"
  rm -rf "$dir"
  mv "$tmp" "$dir" # whole or not at all
  echo "shopify-schema.sh: fetched $(cd "$dir" && echo admin_*.json.gz)" >&2
fi
echo "PURCHASESYNC_SHOPIFY_SCHEMA_DIR=$dir"
