# dpio-operator image. Multi-stage: dependencies are resolved from uv.lock in a builder stage;
# the final stage holds only the interpreter, the virtualenv and the source, and runs non-root.
# Build: docker build -t dpio-operator:0.1.0 .   (no container engine runs where this project is
# developed; the image is not built in CI here, see README "Container image").
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never
RUN pip install --no-cache-dir uv==0.13.9
WORKDIR /app
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project
COPY operator ./operator
RUN uv sync --frozen --no-dev --no-editable

FROM ${PYTHON_IMAGE}
RUN groupadd --system --gid 65532 dpio && useradd --system --uid 65532 --gid dpio --no-create-home dpio
COPY --from=builder /app/.venv /app/.venv
ENV PATH=/app/.venv/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["python", "-m", "dpio.handlers.main"]
CMD ["--liveness=http://0.0.0.0:8080/healthz"]
