#!/usr/bin/env bash
# Make sure PostgreSQL, Redis and RabbitMQ answer: start what is installed but stopped,
# fall back to docker compose, otherwise say what is missing.
set -uo pipefail

PG_HOST=127.0.0.1; PG_PORT=5432; REDIS_PORT=6379; AMQP_PORT=5672

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() {  # name port seconds
  local deadline=$((SECONDS + $3))
  while ! port_open "$2"; do
    if ((SECONDS >= deadline)); then echo "ensure-services: $1 did not answer on port $2" >&2; return 1; fi
    sleep 0.5
  done
}

docker_up() {
  if command -v docker >/dev/null && docker info >/dev/null 2>&1; then
    docker compose up -d "$1" && return 0
  fi
  echo "ensure-services: $1 is not running and neither a local install nor a Docker engine is available" >&2
  return 1
}

ensure_postgres() {
  port_open $PG_PORT && return 0
  if [ -d /etc/postgresql ] && command -v pg_ctlcluster >/dev/null; then
    echo "ensure-services: starting PostgreSQL"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -n1)" main start
  else
    docker_up postgres || return 1
  fi
  wait_port PostgreSQL $PG_PORT 60
  until pg_isready -q -h $PG_HOST -p $PG_PORT 2>/dev/null || ! command -v pg_isready >/dev/null; do sleep 0.5; done
}

ensure_redis() {
  port_open $REDIS_PORT && return 0
  if command -v redis-server >/dev/null; then
    echo "ensure-services: starting Redis"
    redis-server --daemonize yes --bind 127.0.0.1 --port $REDIS_PORT --save "" --appendonly no
  else
    docker_up redis || return 1
  fi
  wait_port Redis $REDIS_PORT 30
}

ensure_rabbitmq() {
  port_open $AMQP_PORT && return 0
  if command -v rabbitmq-server >/dev/null; then
    echo "ensure-services: starting RabbitMQ"
    rabbitmq-server -detached
  else
    docker_up rabbitmq || return 1
  fi
  wait_port RabbitMQ $AMQP_PORT 120
}

ensure_postgres && ensure_redis && ensure_rabbitmq
