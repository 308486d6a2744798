#!/usr/bin/env bash
# Validate docker-compose.yml with a Docker Compose client when one is installed (no engine needed).
set -euo pipefail
if docker compose version >/dev/null 2>&1; then
  docker compose config --quiet && echo "docker-compose.yml: valid"
elif command -v docker-compose >/dev/null; then
  docker-compose config --quiet && echo "docker-compose.yml: valid"
else
  echo "no Docker Compose client here; tests/test_compose.py checks the file's structure"
fi
