# syntax=docker/dockerfile:1
# The dli-operator image: `docker build .` gives the operator, `--target emulator` the DLI emulator.
# Both are built from one wheel; the runtime stages carry a virtual environment and nothing else
# (no compiler, no pip, no source tree). See docs/image-build.md for daemonless builds.

# Pin the interpreter CI tests with (3.11); override to build from a local base image.
ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm

# ---------------------------------------------------------------------------------------------
# build: the wheel, and a virtual environment with it and its dependencies installed.
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator/ operator/
# Only the project is built here; its dependencies come as published wheels in the next step.
RUN python3 -m venv /opt/build \
    && /opt/build/bin/pip wheel --no-deps --wheel-dir /wheels . \
    && python3 -m venv /opt/dli-operator \
    && /opt/dli-operator/bin/pip install --only-binary=:all: /wheels/dli_operator-*.whl \
    && /opt/dli-operator/bin/pip uninstall --yes pip setuptools wheel \
    && /opt/dli-operator/bin/dli-operator --help

# ---------------------------------------------------------------------------------------------
# runtime: the base of both images. Non-root, nothing written at run time.
FROM ${PYTHON_IMAGE} AS runtime
# pip and setuptools are build tools: the runtime has no use for them.
RUN if python3 -m pip --version >/dev/null 2>&1; then \
        python3 -m pip uninstall --yes pip setuptools wheel; \
    fi \
    && useradd --system --uid 10001 --user-group --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin dli
COPY --from=build /opt/dli-operator /opt/dli-operator
# Bytecode was compiled at install time; a read-only root filesystem must not be written to.
ENV PATH=/opt/dli-operator/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp
# Outside any source tree: the repo's `operator/` folder must never shadow the stdlib module.
WORKDIR /srv
USER 10001:10001

# ---------------------------------------------------------------------------------------------
# emulator: `docker build --target emulator .` (dev overlay, demos, tests).
FROM runtime AS emulator
EXPOSE 8099
ENTRYPOINT ["dli-operator", "emulator", "--host", "0.0.0.0", "--port", "8099"]

# ---------------------------------------------------------------------------------------------
# operator: the default target (last stage). Namespaces come as arguments (CMD), so a Deployment
# can replace them without repeating the entrypoint.
FROM runtime AS operator
EXPOSE 8080 9090
ENTRYPOINT ["dli-operator", "run"]
CMD ["--all-namespaces"]
