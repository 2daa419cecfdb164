# syntax=docker/dockerfile:1
# callmon: build a wheel in one stage, install it into a slim runtime as a non-root user.

FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY monitor ./monitor
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    CALLMON_CONFIG=/etc/callmon/callmon.yaml
RUN useradd --system --uid 10001 --home-dir /var/lib/callmon --create-home callmon
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
COPY rules /etc/callmon/rules
# State (the SQLite store) lives on a volume; the relative default store URL resolves here.
WORKDIR /var/lib/callmon
VOLUME ["/var/lib/callmon"]
USER callmon
EXPOSE 9464
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:9464/healthz', timeout=4); sys.exit(0)"]
# Exec form: callmon itself is PID 1, so `docker stop`'s SIGTERM reaches it directly.
# Works with --read-only --tmpfs /tmp (no bytecode is written; state is on the volume).
ENTRYPOINT ["callmon"]
CMD ["run"]
