# The two commands of the README:  `make run`  and  `make test`.
# Each creates (or reuses) the local virtual environment .venv by itself.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test lint venv browser clean

# Re-install only when pyproject.toml changes.
$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev,livekit,train]'
	@# resemblyzer pulls the old `webrtcvad`, whose module imports pkg_resources (gone from
	@# current setuptools); webrtcvad-wheels ships the same module without it: make it win.
	$(PY) -m pip install -q --force-reinstall --no-deps 'webrtcvad-wheels>=2.0.14'
	@touch $(STAMP)

venv: $(STAMP)

# Run the agent on the embedded default model; prints the URL to open.
run: $(STAMP)
	$(PY) run_agent.py serve $(ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# The browser test needs Debian's chromium; install it when we may (root + apt).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "chromium missing: install it (apt-get install chromium) or set MAVID_SKIP_BROWSER=1"; fi; }

# The whole suite. As root, it runs in a network namespace of its own with only loopback up,
# so no test can send traffic off this machine.
test: $(STAMP) browser lint
	@if [ "$$(id -u)" = 0 ] && unshare --net true 2>/dev/null; then \
	  unshare --net sh -c 'ip link set lo up && exec $(VENV)/bin/pytest $(PYTEST_ARGS)'; \
	else \
	  $(VENV)/bin/pytest $(PYTEST_ARGS); \
	fi

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
