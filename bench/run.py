"""`make bench`: run every bench and write docs/benchmarks.md.

Each bench module exposes `async def run() -> str`, its markdown section, and raises when
a measurement fails. A failed bench is written as such and makes the exit status 1; a
missed target does not (targets are reported with their ratios in the sections).
"""

import asyncio
import importlib
import logging
import os
import platform
import sys
import time
import traceback
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import aio_pika
import asyncpg
import psutil
from redis.asyncio import Redis

from bench import common

BENCHES = (
    "bench.throughput", "bench.dedupe", "bench.scheduler_scale", "bench.claim_wait",
    "bench.api_load", "bench.curves",
)  # fmt: skip
OUTPUT = common.ROOT / "docs" / "benchmarks.md"
# Sections written by hand, appended as they are: what the profiles showed, the soak's table.
HAND_WRITTEN = (common.ROOT / "bench" / "profiles.md", common.ROOT / "bench" / "soak.md")
COMMAND = "make bench  # = .venv/bin/python -m bench.run"
LIBRARIES = ("taskiq", "taskiq-aio-pika", "taskiq-redis", "celery", "fastapi", "sqlalchemy")


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def os_name() -> str:
    release = Path("/etc/os-release")
    if release.exists():
        for line in release.read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip('"') + f", kernel {platform.release()}"
    return platform.platform()


async def service_versions() -> str:
    env = common.isolated_env("versions")
    postgres = await asyncpg.connect("postgresql://postgres@127.0.0.1:5432/postgres")
    try:
        pg = await postgres.fetchval("SHOW server_version")
    finally:
        await postgres.close()
    redis = Redis.from_url(env["REDIS_URL"], decode_responses=True)
    try:
        redis_version = (await redis.info("server"))["redis_version"]
    finally:
        await redis.aclose()
    connection = await aio_pika.connect(common.AMQP_URL)
    async with connection:
        properties = connection.transport.connection.server_properties  # type: ignore[union-attr]
        rabbit = properties.get("version", "unknown")
        if isinstance(rabbit, bytes):
            rabbit = rabbit.decode()
    return f"PostgreSQL {pg}, Redis {redis_version}, RabbitMQ {rabbit}"


async def machine() -> list[str]:
    memory = psutil.virtual_memory().total / 2**30
    libraries = ", ".join(f"{name} {metadata.version(name)}" for name in LIBRARIES)
    return [
        f"- CPU: {cpu_model()}, {os.cpu_count()} cores; RAM {memory:.0f} GiB",
        f"- OS: {os_name()}; Python {platform.python_version()}",
        f"- Services: {await service_versions()}",
        f"- Libraries: {libraries}",
        "- The machine is shared (other work may run at the same time): figures are noisy;"
        " compare the ratios measured within one run rather than absolute numbers.",
    ]


async def run_one(module_name: str) -> tuple[str, bool]:
    started = time.monotonic()
    try:
        module = importlib.import_module(module_name)
        section = await module.run()
    except Exception as exc:
        traceback.print_exc()
        return f"## {module_name}\n\n**Measurement failed:** `{type(exc).__name__}: {exc}`", False
    return f"{section}\n\n_{module_name}: {time.monotonic() - started:.0f} s_", True


async def main() -> int:
    logging.basicConfig(level=logging.WARNING)
    started_at = datetime.now(UTC)
    started = time.monotonic()
    header = await machine()
    sections, failed = [], []
    for module_name in BENCHES:
        print(f"running {module_name} ...", flush=True)
        section, ok = await run_one(module_name)
        sections.append(section)
        if not ok:
            failed.append(module_name)
    total = time.monotonic() - started
    sections += [path.read_text().strip() for path in HAND_WRITTEN if path.exists()]
    document = "\n".join(
        [
            "# Benchmarks",
            "",
            f"Run {started_at:%Y-%m-%d %H:%M} UTC, {total / 60:.1f} minutes in all, with:",
            "",
            "```sh",
            COMMAND,
            "```",
            "",
            *header,
            "",
            "\n\n".join(sections),
            "",
        ]
    )
    OUTPUT.parent.mkdir(exist_ok=True)
    OUTPUT.write_text(document)
    print(f"wrote {OUTPUT} in {total:.0f} s", flush=True)
    if failed:
        print(f"measurement failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
