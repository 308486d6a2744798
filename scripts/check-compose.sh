#!/usr/bin/env bash
# Validate docker-compose.yml with a Docker Compose client when one is installed (no engine needed).
set -euo pipefail
if docker compose version >/dev/null 2>&1; then
  docker compose config --quiet && echo "docker-compose.yml: valid"
elif command -v docker-compose >/dev/null; then
  docker-compose config --quiet && echo "docker-compose.yml: valid"
else
  # No client: the Compose Specification's JSON schema, vendored by check-jsonschema.
  "$(dirname "$0")/../.venv/bin/check-jsonschema" --builtin-schema vendor.compose-spec docker-compose.yml
fi
