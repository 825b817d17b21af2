# landflow API and worker: one image, two commands (`landflow api`, `landflow worker`),
# plus `landflow migrate` as a one-shot. Configured entirely by LANDFLOW_* environment.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    LANDFLOW_DATA_DIR=/var/lib/landflow

WORKDIR /app
COPY . /app
# A regular (non-editable) install: the rules tables, policy and migrations are package data.
RUN pip install /app \
    && useradd --system --home-dir /var/lib/landflow --create-home landflow

USER landflow
EXPOSE 8000 9464
ENTRYPOINT ["landflow"]
CMD ["api", "--host", "0.0.0.0"]
