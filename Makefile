# Two commands on a fresh Debian machine: `make run` starts the daemon, `make test` runs every test.
# Each installs what it needs (apt packages when missing, npm packages, the test guest).
SHELL := /bin/bash
.DEFAULT_GOAL := help
# openssh-client: `grove ssh` (the daemon makes its own key pair; it needs no OpenSSH tool).
APT_PACKAGES := qemu-system-x86 qemu-utils openssh-client
# Tests only: the clone tests mount a loop XFS to exercise reflink clones; the cloud-init tests read
# seeds back with isoinfo (genisoimage); the service tests check units with systemd-analyze (systemd); the
# CLI remotes test makes a self-signed certificate with openssl; the web UI tests drive Debian's chromium
# through playwright-core (no browser download); the completion tests run the scripts in zsh and fish.
TEST_APT_PACKAGES := xfsprogs genisoimage systemd openssl chromium zsh fish
# Benchmarks only: the download benchmark's reference is curl fetching the same file; the web UI
# benchmark runs in chromium; the footprint benchmark's reference is libvirtd (without recommends: no
# libvirt-daemon-system, so no services and no virbr0 network; the benchmark runs its own libvirtd).
BENCH_APT_PACKAGES := curl chromium
BENCH_APT_LEAN_PACKAGES := libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients
NPM_STAMP := node_modules/.grove-installed

.PHONY: help run test soak build lint screenshots system-deps test-deps bench-deps guest bench lint-openapi clean distro-image distro-check

help:
	@echo "make run    - install what is missing, build, start the daemon on 127.0.0.1:22100"
	@echo "make test   - install what is missing, build, build the test guest, lint, run all tests"
	@echo "make lint   - typescript-eslint over src/, test/ and bench/ (floating promises and other bugs)"
	@echo "make soak   - 10 minutes of 8 parallel VM lifecycles, then 50 daemon SIGKILLs (figures in RELIABILITY.md)"
	@echo "make bench  - run the benchmarks (figures go to BENCHMARKS.md by hand)"
	@echo "make screenshots - retake the README's screenshots of the web UI (docs/web-ui*.png)"
	@echo "make distro-image - build the Debian 12 test disk (.cache/debian-12, root or sudo; see test/distro/README.md)"
	@echo "make distro-check - build it if needed and boot it under TCG: cloud-init, guest agent, SSH"

# $(call apt_install,<packages>,<what is missing>): install with apt as root or through sudo.
define apt_install
  echo "Installing $(1) with apt"; \
  if [ "$$(id -u)" = 0 ]; then SUDO=; elif command -v sudo >/dev/null; then SUDO=sudo; else \
    echo "$(2) is missing and neither root nor sudo is available: install $(1)"; exit 1; fi; \
  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $(1)
endef

system-deps:
	@if ! command -v qemu-system-x86_64 >/dev/null || ! command -v qemu-img >/dev/null || ! command -v ssh >/dev/null; then \
	  $(call apt_install,$(APT_PACKAGES),QEMU or OpenSSH's client); \
	fi

# mkfs.xfs is in /usr/sbin, often not on a non-root user's PATH: ask dpkg instead.
test-deps:
	@for p in $(TEST_APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  $(call apt_install,$$missing,$$missing); \
	fi

bench-deps:
	@if ! command -v curl >/dev/null || ! command -v chromium >/dev/null; then \
	  $(call apt_install,$(BENCH_APT_PACKAGES),curl or chromium); \
	fi
	@if [ ! -x /usr/sbin/libvirtd ] || [ ! -x /usr/bin/virsh ]; then \
	  $(call apt_install,--no-install-recommends $(BENCH_APT_LEAN_PACKAGES),libvirt); \
	fi

$(NPM_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

build: $(NPM_STAMP)
	npm run build --silent

run: system-deps build
	bin/grove serve

guest:
	bash test/guest/build.sh

# Type-checked (no build needed); part of `make test`, before the tests.
lint: $(NPM_STAMP)
	npm run lint --silent

# The Debian 12 cloud disk for real-distro tests, built from Debian packages (cached; root or sudo).
distro-image: system-deps
	bash test/distro/build-debian.sh

distro-check: distro-image
	node test/distro/boot-check.mjs

test: system-deps test-deps build guest distro-image
	npm run lint --silent
	GROVE_ACCEL=tcg node scripts/run-tests.mjs

# The long fault and soak suite (the short one runs in `make test`); writes its figures to soak-report.json.
soak: system-deps build guest
	GROVE_ACCEL=tcg node dist/test/soak/run.js --minutes 10 --workers 8 --kills 50 --out soak-report.json

bench: system-deps bench-deps build guest
	GROVE_ACCEL=tcg node dist/bench/run.js

# The README's screenshots of the web UI (docs/web-ui.png, docs/web-ui-screen.png), in Debian's chromium.
screenshots: system-deps test-deps build guest
	GROVE_ACCEL=tcg node dist/test/screenshots/readme.js

lint-openapi: build
	node scripts/lint-openapi.mjs

clean:
	rm -rf dist
