# Tilecast: `tilecast serve` as a non-root user. Set DATABASE_URL to use your PostgreSQL; without it the
# embedded PostgreSQL keeps its data under /data (mount a volume there).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    TILECAST_DATA_DIR=/data

RUN useradd --create-home --uid 10001 tilecast && mkdir /data && chown tilecast /data

WORKDIR /app
COPY pyproject.toml README.md alembic.ini ./
COPY app ./app
COPY migrations ./migrations
RUN pip install .

USER tilecast
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/_health')"
CMD ["tilecast", "serve", "--host", "0.0.0.0", "--port", "8000"]
