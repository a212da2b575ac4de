# unionhub: `make run` starts the hub, `make test` runs the linters and every test. Both set up first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
HOST ?= 127.0.0.1
PORT ?= 8080
DATA ?= data

.PHONY: setup run lint test test-deps clean

setup: $(BIN)/unionhub web_client/node_modules/.installed

$(BIN)/unionhub: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# argostranslate pulls stanza -> torch: take the CPU build first, not a multi-GB CUDA one
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[test]'
	touch $@

web_client/node_modules/.installed: web_client/package.json web_client/package-lock.json
	cd web_client && npm ci --no-audit --no-fund --loglevel=error
	touch $@

# System packages the tests drive: a real browser, a real RTMP server, an HTTP load generator, a TURN server.
test-deps:
	@if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/sbin/nginx ] || [ ! -e /usr/lib/nginx/modules/ngx_rtmp_module.so ] \
		|| [ ! -x /usr/bin/wrk ] || [ ! -x /usr/bin/janus ] || [ ! -x /usr/sbin/nft ] || [ ! -x /usr/sbin/tc ] || [ ! -x /usr/bin/redis-server ] \
		|| [ ! -x /usr/bin/turnserver ]; then \
		$(SUDO) apt-get update -q && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q chromium nginx libnginx-mod-rtmp wrk janus nftables iproute2 redis-server coturn; \
	fi

run: setup
	$(BIN)/unionhub serve --host $(HOST) --port $(PORT) --data-dir $(DATA)

# Import contracts, ruff, mypy: all configured in pyproject.toml. Each runs even when an earlier one
# fails, so one run shows every finding; the target fails if any of them did.
lint: $(BIN)/unionhub
	@status=0; \
	echo "$(BIN)/lint-imports"; $(BIN)/lint-imports --no-logo || status=1; \
	echo "$(BIN)/ruff check ."; $(BIN)/ruff check . || status=1; \
	echo "$(BIN)/python -m mypy"; $(BIN)/python -m mypy || status=1; \
	exit $$status

test: setup test-deps lint
	$(BIN)/python -m pytest -q -rs

clean:
	rm -rf $(VENV) web_client/node_modules
