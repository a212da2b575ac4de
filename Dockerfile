# unionhub in a container: the same `make setup` as on a server (a Python venv and the web
# client's npm packages), run as its own user, media on one UDP port. docs/DEPLOYMENT.md
# ("Containers") shows deploy/compose/compose.yaml: hub + Redis + coturn + nginx.
FROM debian:12-slim

RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      python3 python3-venv make nodejs npm ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --home-dir /var/lib/unionhub --create-home --shell /usr/sbin/nologin unionhub

WORKDIR /opt/unionhub
COPY pyproject.toml README.md Makefile ./
COPY core core
COPY media_server media_server
COPY signalling signalling
COPY captioning captioning
COPY recordings recordings
COPY cluster cluster
COPY meetings meetings
COPY unionhub unionhub
COPY web_client web_client
RUN make setup && rm -rf /root/.cache

USER unionhub
ENV HOME=/var/lib/unionhub
VOLUME /var/lib/unionhub
# pages and Socket.IO (behind the TLS proxy); all media on one UDP port
EXPOSE 8080/tcp 10000/udp
CMD ["/opt/unionhub/.venv/bin/unionhub", "serve", "--host", "0.0.0.0", "--port", "8080", \
     "--data-dir", "/var/lib/unionhub", "--udp-port", "10000", "--log-format", "json"]
