# The hub image: Python 3.11 with the pinned dependencies and the project.
FROM python:3.11-slim-bookworm
WORKDIR /app
RUN useradd --system --home-dir /app --shell /usr/sbin/nologin hub
COPY requirements.lock pyproject.toml README.md ./
RUN pip install --no-cache-dir -r requirements.lock
COPY safety_hub ./safety_hub
COPY connectors ./connectors
COPY simulators ./simulators
COPY alert_rules ./alert_rules
RUN pip install --no-cache-dir --no-deps . && mkdir -p /data && chown hub /data
USER hub
ENV SAFETY_HUB_DATA_DIR=/data SAFETY_HUB_API_HOST=0.0.0.0 SAFETY_HUB_API_PORT=8080
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --retries=6 \
  CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2).status == 200 else 1)"
ENTRYPOINT ["safety-hub"]
CMD ["run"]
