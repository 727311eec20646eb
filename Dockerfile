# dpio-operator image. Multi-stage: dependencies are resolved from uv.lock in a builder stage;
# the final stage holds only the interpreter, the virtualenv (dpio installed into it, not
# editable) and runs non-root. No compiler, uv or pip cache reaches it.
# Build: docker build -t dpio-operator:0.1.0 .   or `make image` (podman; sandbox/dpio_sandbox/image.py,
# which also builds a stand-in base where the default one cannot be pulled: docs/quickstart.md).
# The base is pinned by tag to a patch release; pin it by digest too where your registry allows:
#   docker build --build-arg PYTHON_IMAGE=python:3.11.14-slim-bookworm@sha256:<digest> .
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never
# Where PyPI is reached through a TLS-intercepting proxy, `make image` mounts the machine's CA
# bundle read-only for the RUN steps and names it here (and PIP_INDEX_URL for a pip mirror; uv
# installs from the URLs in uv.lock). Build arguments of the builder stage only: neither the
# bundle nor these settings reach a layer of the final image.
ARG SSL_CERT_FILE
ARG PIP_CERT
ARG PIP_INDEX_URL
RUN pip install --no-cache-dir uv==0.13.9
WORKDIR /app
# Dependencies first, in their own layer: a source or README change does not re-install them
# (README.md is the package's long description, needed only when the project itself is built).
COPY pyproject.toml uv.lock ./
RUN uv sync --frozen --no-dev --no-install-project
COPY README.md ./
COPY operator ./operator
RUN uv sync --frozen --no-dev --no-editable

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="dpio-operator" \
      org.opencontainers.image.description="Kubernetes operator for VMware vSphere DirectPath I/O" \
      org.opencontainers.image.version="0.1.0" \
      org.opencontainers.image.licenses="Apache-2.0"
# A numeric user (65532, as distroless' nonroot): Pod Security "restricted" checks runAsNonRoot
# against the image's USER, which kubelet can verify only when it is numeric.
RUN groupadd --system --gid 65532 dpio && useradd --system --uid 65532 --gid dpio --no-create-home dpio
COPY --from=builder /app/.venv /app/.venv
ENV PATH=/app/.venv/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
USER 65532:65532
EXPOSE 8080
# kopf.run(clusterwide=True) behind our own argument parser (dpio/handlers/main.py). The chart
# passes its own arguments (peering, liveness port); these defaults match `make run`.
# No HEALTHCHECK: Kubernetes ignores it; the chart's probes use kopf's /healthz.
ENTRYPOINT ["python", "-m", "dpio.handlers.main"]
CMD ["--standalone", "--liveness=http://0.0.0.0:8080/healthz"]
