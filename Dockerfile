# One image for web and workers. EXTRAS picks optional dependencies:
# "postgres,s3" for web (a bucket is optional: DIGITS_STORAGE), "postgres,s3,gpu" for
# GPU training workers.
FROM python:3.11-slim
ARG EXTRAS=postgres,s3
ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    TF_CPP_MIN_LOG_LEVEL=2 \
    DIGITS_DATA_DIR=/data \
    DIGITS_STATIC_ROOT=/app/staticfiles
WORKDIR /app
COPY pyproject.toml README.md ./
COPY digits_site digits_site
COPY classifier classifier
COPY collector collector
COPY training training
RUN pip install ".[${EXTRAS}]"
COPY . .
# The app writes owner-only files (its umask is 077): the static files it serves
# are built here as root and read by the unprivileged user below.
RUN python manage.py collectstatic --noinput --verbosity 0 && chmod -R a+rX /app/staticfiles
RUN useradd --create-home digits && mkdir -p /data && chown digits /data
USER digits
EXPOSE 8000
CMD ["gunicorn", "--config", "python:digits_site.gunicorn_conf", "--bind", "0.0.0.0:8000"]
