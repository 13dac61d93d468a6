# The portal: one image, the installed `portal` command with its assets, nothing else.
#   docker build -t portal .            (or scripts/build-image, which does the same with buildah)
#   docker run --env-file .env -p 8080:8080 portal
# The base is a build argument so a mirror or a pinned digest can be used: --build-arg BASE_IMAGE=...
ARG BASE_IMAGE=python:3.11-slim

# ---- build: install the portal and its dependencies into a self-contained venv ---------------------
FROM ${BASE_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
# Reproducible: every dependency comes from the locks, each file checked against its sha256 (scripts/lock
# writes them from pyproject.toml). This layer is reused until a lock changes.
COPY requirements.lock requirements-build.lock ./
RUN python3 -m venv /opt/portal \
    && /opt/portal/bin/pip install --no-cache-dir --require-hashes --no-deps -r requirements.lock \
    && python3 -m venv /opt/build \
    && /opt/build/bin/pip install --no-cache-dir --require-hashes --no-deps -r requirements-build.lock
COPY pyproject.toml README.md schema.sql ./
COPY assets ./assets
COPY portal_core ./portal_core
COPY plugins ./plugins
# The portal's own wheel, built with the locked backend (no unpinned setuptools fetched), installed with
# --no-deps: a dependency missing from the lock fails `pip check` here instead of being fetched unpinned.
# A regular (non-editable) install: the wheel carries schema.sql and assets/, so the image never needs /src.
RUN /opt/build/bin/pip wheel --no-cache-dir --no-deps --no-build-isolation --wheel-dir /tmp/dist ./ \
    && /opt/portal/bin/pip install --no-cache-dir --no-deps /tmp/dist/portal-*.whl \
    && /opt/portal/bin/pip check \
    && /opt/portal/bin/portal --version

# ---- runtime: the venv only, run as an unprivileged user ------------------------------------------
FROM ${BASE_IMAGE}
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PATH=/opt/portal/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PORT=8080 \
    PORTAL_DATA_DIR=/var/lib/portal
# /usr/local/bin/portal is the path operators' manifests already use.
RUN useradd --uid 10001 --user-group --home-dir /var/lib/portal --create-home \
        --shell /usr/sbin/nologin portal \
    && ln -s /opt/portal/bin/portal /usr/local/bin/portal
COPY --from=build /opt/portal /opt/portal
USER 10001:10001
WORKDIR /var/lib/portal
EXPOSE 8080
# `portal healthcheck` asks GET /health on 127.0.0.1:$PORT: no curl needed in the image.
HEALTHCHECK --interval=15s --timeout=6s --start-period=60s --retries=3 \
    CMD ["/usr/local/bin/portal", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/portal"]
CMD ["serve"]
