# One image for every imgserve service; docker-compose.yml gives each its command:
#   api (the default CMD), worker (`imgserve worker`), flower (`celery ... flower`).
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

# The storage root belongs to a non-root user; a new named volume mounted on /data/in or
# /data/out starts with this owner, so the workers can write their outputs there.
RUN useradd --system --uid 10001 --create-home imgserve \
    && mkdir -p /data/in /data/out \
    && chown -R imgserve:imgserve /data

# Only what the package needs (see .dockerignore); the source tree is removed once installed.
COPY pyproject.toml README.md /tmp/imgserve/
COPY app /tmp/imgserve/app
COPY worker /tmp/imgserve/worker
COPY pipeline /tmp/imgserve/pipeline
RUN pip install --no-cache-dir "/tmp/imgserve[flower]" \
    && rm -rf /tmp/imgserve

USER imgserve
WORKDIR /data
ENV IMGSERVE_ROOT=/data IMGSERVE_INPUT_ROOT=/data/in IMGSERVE_OUTPUT_ROOT=/data/out
EXPOSE 8888 5555
CMD ["imgserve", "api", "--host", "0.0.0.0", "--port", "8888"]
