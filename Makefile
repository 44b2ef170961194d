# Two commands on a fresh Debian machine: `make run` starts the daemon, `make test` runs every test.
# Each installs what it needs (apt packages when missing, npm packages, the test guest).
SHELL := /bin/bash
.DEFAULT_GOAL := help
APT_PACKAGES := qemu-system-x86 qemu-utils
# Tests only: the clone tests mount a loop XFS to exercise reflink clones.
TEST_APT_PACKAGES := xfsprogs
NPM_STAMP := node_modules/.grove-installed

.PHONY: help run test build system-deps test-deps guest bench lint-openapi clean

help:
	@echo "make run    - install what is missing, build, start the daemon on 127.0.0.1:22100"
	@echo "make test   - install what is missing, build, build the test guest, run all tests"
	@echo "make bench  - run the benchmarks (figures go to BENCHMARKS.md by hand)"

system-deps:
	@if ! command -v qemu-system-x86_64 >/dev/null || ! command -v qemu-img >/dev/null; then \
	  echo "Installing $(APT_PACKAGES) with apt"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; elif command -v sudo >/dev/null; then SUDO=sudo; else \
	    echo "QEMU is missing and neither root nor sudo is available: install $(APT_PACKAGES)"; exit 1; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $(APT_PACKAGES); \
	fi

test-deps:
	@if ! command -v mkfs.xfs >/dev/null; then \
	  echo "Installing $(TEST_APT_PACKAGES) with apt"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; elif command -v sudo >/dev/null; then SUDO=sudo; else \
	    echo "mkfs.xfs is missing and neither root nor sudo is available: install $(TEST_APT_PACKAGES)"; exit 1; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $(TEST_APT_PACKAGES); \
	fi

$(NPM_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

build: $(NPM_STAMP)
	npm run build --silent

run: system-deps build
	node bin/grove serve

guest:
	bash test/guest/build.sh

test: system-deps test-deps build guest
	GROVE_ACCEL=tcg node scripts/run-tests.mjs

bench: system-deps build guest
	GROVE_ACCEL=tcg node dist/bench/run.js

lint-openapi: build
	node scripts/lint-openapi.mjs

clean:
	rm -rf dist
