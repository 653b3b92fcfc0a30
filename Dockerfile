# syntax=docker/dockerfile:1
# oipserve as a container image: docs/deploy.md has the build and run commands.
#
#   docker build -t oipserve .                                   # scikit-learn, XGBoost, LightGBM, ONNX
#   docker build -t oipserve:torch --build-arg EXTRAS=torch .    # PyTorch (CPU build)
#   docker run --rm -p 8080:8080 -p 8081:8081 -v "$PWD/examples/models:/mnt/models:ro" oipserve
#
# Two stages: the first builds a virtual environment, the second copies only that environment onto
# a clean slim base, so no compiler, pip cache or source tree ends up in the image.

ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build
# The framework extras to install (comma-separated): sklearn, xgboost, lightgbm, onnx, torch, all.
ARG EXTRAS=sklearn,xgboost,lightgbm,onnx
# PyPI's torch is the CUDA build (gigabytes of CUDA libraries); PyTorch's own index serves the CPU
# build under the same version number. pip takes the CPU wheel from there and everything else from
# PyPI.
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/oipserve
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN /opt/oipserve/bin/pip install --extra-index-url "${TORCH_INDEX_URL}" ".[${EXTRAS}]"

FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="oipserve" \
      org.opencontainers.image.description="Open Inference Protocol (KServe V2) server, REST and gRPC" \
      org.opencontainers.image.licenses="Apache-2.0"
# A fixed numeric user, so that Kubernetes' runAsNonRoot can verify it without a passwd lookup.
RUN groupadd --system --gid 1000 oipserve \
 && useradd --system --uid 1000 --gid 1000 --home-dir /home/oipserve --create-home oipserve \
 && mkdir -p /mnt/models \
 && chown 1000:1000 /mnt/models
COPY --from=build /opt/oipserve /opt/oipserve
ENV PATH=/opt/oipserve/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    OIPSERVE_MODEL_REPOSITORY=/mnt/models
USER 1000:1000
WORKDIR /home/oipserve
EXPOSE 8080 8081
# Liveness through the REST port (OIPSERVE_HTTP_PORT when the port was moved); Python, because a
# slim image has neither curl nor wget.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import os, sys, urllib.request; port = os.environ.get('OIPSERVE_HTTP_PORT', '8080'); sys.exit(0 if urllib.request.urlopen(f'http://127.0.0.1:{port}/v2/health/live', timeout=4).status == 200 else 1)"]
# Arguments given to `docker run IMAGE ...` (or a Kubernetes container's args) follow `serve`;
# with none, the repository is OIPSERVE_MODEL_REPOSITORY, /mnt/models.
ENTRYPOINT ["oipserve", "serve"]
