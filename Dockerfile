# syntax=docker/dockerfile:1
# The dli-operator image: `docker build .` gives the operator, `--target emulator` the DLI emulator.
# Reproducible: every package comes from requirements/*.lock (`make lock`), pinned with its hashes
# and installed by pip --require-hashes; the runtime stages carry a virtual environment and nothing
# else (no compiler, no pip, no source tree). See docs/image-build.md.

# Pin the interpreter CI tests with (3.11); override to build from a local base image.
ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm

# ---------------------------------------------------------------------------------------------
# build: the wheel, built by the locked hatchling (--no-build-isolation: nothing unpinned).
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY requirements/ requirements/
RUN python3 -m venv /opt/build \
    && /opt/build/bin/pip install --require-hashes --only-binary=:all: -r requirements/build.lock
COPY pyproject.toml README.md ./
COPY operator/ operator/
RUN /opt/build/bin/pip wheel --no-deps --no-build-isolation --wheel-dir /wheels .

# ---------------------------------------------------------------------------------------------
# operator-env, emulator-env: one virtual environment per image, at the path it runs from (a
# venv's scripts name their interpreter by absolute path), holding exactly its lock file's
# packages and the wheel; `pip check` proves the lock satisfies the wheel before pip is removed.
FROM build AS operator-env
ARG LOCK=operator
RUN python3 -m venv /opt/dli-operator \
    && /opt/dli-operator/bin/pip install --require-hashes --only-binary=:all: --no-deps \
        -r "requirements/${LOCK}.lock" \
    && /opt/dli-operator/bin/pip install --no-deps /wheels/dli_operator-*.whl \
    && /opt/dli-operator/bin/pip check \
    && /opt/dli-operator/bin/pip uninstall --yes pip setuptools wheel \
    && /opt/dli-operator/bin/python -c "import dli_operator.handlers" \
    && /opt/dli-operator/bin/dli-operator --version

FROM build AS emulator-env
ARG LOCK=emulator
RUN python3 -m venv /opt/dli-operator \
    && /opt/dli-operator/bin/pip install --require-hashes --only-binary=:all: --no-deps \
        -r "requirements/${LOCK}.lock" \
    && /opt/dli-operator/bin/pip install --no-deps /wheels/dli_operator-*.whl \
    && /opt/dli-operator/bin/pip check \
    && /opt/dli-operator/bin/pip uninstall --yes pip setuptools wheel \
    && /opt/dli-operator/bin/python -c "import dli_operator.emulator.__main__" \
    && /opt/dli-operator/bin/dli-operator --version

# ---------------------------------------------------------------------------------------------
# runtime: the base of both images. Non-root, nothing written at run time.
FROM ${PYTHON_IMAGE} AS runtime
# pip and setuptools are build tools: the runtime has no use for them.
RUN if python3 -m pip --version >/dev/null 2>&1; then \
        python3 -m pip uninstall --yes pip setuptools wheel; \
    fi \
    && useradd --system --uid 10001 --user-group --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin dli
# Bytecode was compiled at install time; a read-only root filesystem must not be written to.
ENV PATH=/opt/dli-operator/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp
# Outside any source tree: the repo's `operator/` folder must never shadow the stdlib module.
WORKDIR /srv
USER 10001:10001

# ---------------------------------------------------------------------------------------------
# emulator: `docker build --target emulator .` (dev overlay, the chart's emulator.enabled, demos).
# Its environment adds the emulator's HTTP server (extra `emulator`: starlette, uvicorn).
FROM runtime AS emulator
COPY --from=emulator-env /opt/dli-operator /opt/dli-operator
EXPOSE 8099
ENTRYPOINT ["dli-operator", "emulator", "--host", "0.0.0.0", "--port", "8099"]

# ---------------------------------------------------------------------------------------------
# operator: the default target (last stage). Namespaces come as arguments (CMD), so a Deployment
# can replace them without repeating the entrypoint.
FROM runtime AS operator
COPY --from=operator-env /opt/dli-operator /opt/dli-operator
EXPOSE 8080 9090
ENTRYPOINT ["dli-operator", "run"]
CMD ["--all-namespaces"]
