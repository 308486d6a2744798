FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
# The locked runtime set first (exact versions, hashes checked): a layer that only changes
# with the lock. Then the project itself, without dependencies.
COPY requirements/main.txt ./requirements/main.txt
RUN pip install --no-cache-dir --require-hashes -r requirements/main.txt
COPY pyproject.toml README.md ./
COPY backend ./backend
RUN pip install --no-cache-dir --no-deps .
COPY alembic.ini ./
COPY alembic ./alembic
COPY scripts ./scripts
RUN useradd --create-home taskhub
USER taskhub
EXPOSE 8000
CMD ["uvicorn", "backend.main:app", "--host", "0.0.0.0", "--port", "8000", "--no-access-log", "--loop", "uvloop", "--http", "httptools"]
