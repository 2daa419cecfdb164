# callmon: installed into a virtual environment in one stage, copied alone into a slim runtime
# that runs it as a non-root user on a read-only root filesystem.
#   docker build -t callmon .
# Built and run in CI exactly as written: deploy/test-image.sh (make image-test).

FROM python:3.11-slim AS build
# gcc and libpq-dev: psycopg's C implementation, built against Debian's libpq (as fast as
# psycopg[binary], without the 10 MB of libraries that wheel bundles, OpenSSL's among them,
# which the base image has already); binutils' `strip` for every extension module.
RUN apt-get update -qq \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        binutils gcc libc6-dev libpq-dev \
    && rm -rf /var/lib/apt/lists/*
# psycopg's C build in a layer of its own: a change of callmon's source does not compile it again.
RUN python -m venv /opt/callmon \
    && /opt/callmon/bin/pip install --no-cache-dir --no-compile --disable-pip-version-check \
        'psycopg[c]'
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY monitor ./monitor
# pip and setuptools leave the venv once it is filled (nothing installs at run time); the
# wheel's psycopg-binary gives way to the C build, and the tzdata package to the base image's
# zone files (/usr/share/zoneinfo, which zoneinfo reads first).
# Bytecode is compiled once and checked by hash, not by timestamp: the image is immutable and
# its root read-only, so nothing is compiled or written at run time. The libraries keep their
# bytecode alone, where the source was (a traceback still names each frame's file and line);
# callmon keeps its source, and so does apprise, which finds its plugins by their .py files.
ARG SITE=/opt/callmon/lib/python3.11/site-packages
RUN /opt/callmon/bin/pip install --no-cache-dir --no-compile --disable-pip-version-check . \
    && /opt/callmon/bin/pip uninstall -qq -y psycopg-binary tzdata pip setuptools \
    && find /opt/callmon -name '*.so*' -type f -exec strip --strip-unneeded {} + \
    && find /opt/callmon \( -name '*.pyi' -o -name '*.pyx' -o -name '*.pxd' -o -name '*.c' \
        -o -name '*.h' \) -type f -delete \
    && python -m compileall -q -j 0 --invalidation-mode unchecked-hash \
        "$SITE/monitor" "$SITE/apprise" \
    && python -m compileall -q -j 0 -b --invalidation-mode unchecked-hash \
        -x '/site-packages/(monitor|apprise)/' "$SITE" \
    && find "$SITE" \( -path "$SITE/monitor" -o -path "$SITE/apprise" \) -prune \
        -o -name '*.py' -type f -exec rm -f {} +

FROM python:3.11-slim
# libpq for psycopg's C implementation (nothing else is installed; apt's lists are not kept).
RUN apt-get update -qq \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends libpq5 \
    && apt-get clean \
    && rm -rf /var/lib/apt/lists/* /var/cache/debconf/*-old /var/log/apt /var/log/dpkg.log
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="callmon" \
      org.opencontainers.image.description="Event-driven call-status monitor: polls call-history APIs, alerts through apprise, exports Prometheus metrics." \
      org.opencontainers.image.source="https://github.com/callmon/callmon" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="MIT"
ENV PATH=/opt/callmon/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    CALLMON_CONFIG=/etc/callmon/callmon.yaml \
    CALLMON_STATE_DIR=/var/lib/callmon
# The state volume belongs to callmon and holds nothing else (no home-directory skeleton).
RUN useradd --uid 10001 --user-group --no-create-home --home-dir /var/lib/callmon \
        --shell /usr/sbin/nologin callmon \
    && install -d -o callmon -g callmon -m 0750 /var/lib/callmon
COPY --from=build /opt/callmon /opt/callmon
COPY rules /etc/callmon/rules
# The SQLite store lives here: a relative store path (the default `sqlite:///callmon-state.db`
# included) resolves under CALLMON_STATE_DIR, not beside the read-only config.
WORKDIR /var/lib/callmon
VOLUME ["/var/lib/callmon"]
# Numeric, so that Kubernetes' runAsNonRoot can verify it.
USER 10001:10001
EXPOSE 9464
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; urllib.request.urlopen('http://127.0.0.1:9464/healthz', timeout=4); sys.exit(0)"]
# Exec form: callmon itself is PID 1, so `docker stop`'s SIGTERM reaches it directly.
ENTRYPOINT ["callmon"]
CMD ["run"]
