# The hub image: Python 3.11 with the project and its runtime dependencies pinned by
# requirements.lock (used as constraints, so the dev-only packages stay out of the image).
FROM python:3.11-slim-bookworm
WORKDIR /app
RUN useradd --system --home-dir /app --shell /usr/sbin/nologin hub
COPY requirements.lock pyproject.toml README.md ./
COPY safety_hub ./safety_hub
COPY connectors ./connectors
COPY simulators ./simulators
COPY dashboards ./dashboards
COPY alert_rules ./alert_rules
RUN pip install --no-cache-dir -c requirements.lock . \
 && mkdir -p /data /broker && chown hub /data /broker
USER hub
# /broker: where `safety-hub broker` writes passwd, acl and credentials (compose broker-init)
ENV SAFETY_HUB_DATA_DIR=/data SAFETY_HUB_API_HOST=0.0.0.0 SAFETY_HUB_API_PORT=8080
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --retries=6 \
  CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2).status == 200 else 1)"
ENTRYPOINT ["safety-hub"]
CMD ["run"]
