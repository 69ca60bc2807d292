# terraform-provider-cmk: every set-up step lives here, so a fresh machine needs
# only `make demo` and `make test`.

SHELL := /bin/bash
CARGO ?= cargo
TERRAFORM ?= terraform
PYTHON ?= python3
VENV := .venv
VENV_PY := $(VENV)/bin/python
BIN_DIR := target/release

.PHONY: all build demo test unit acceptance lint venv bench fuzz docs release release-unsigned install clean

all: build

# One build for demo, test and install: the same cargo invocation (profile,
# targets, features). Examples pull in the dev-dependencies, whose features
# (tonic's `channel`, hyper-util's `tokio`) unify into shared dependencies;
# a build without them (`--bins` alone) compiled every one of those again.
CARGO_BUILD := $(CARGO) build --release --bins --examples

build:
	$(CARGO_BUILD)

# Python tools the tests use (moto's KMS server, Databricks' official SDK),
# installed into the project's own venv.
# A stamp file, not bin/python: that is a symlink, and touching it would touch
# the interpreter it points to.
VENV_STAMP := $(VENV)/.requirements-installed
$(VENV_STAMP): requirements-test.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV_PY) -m pip install --quiet --upgrade pip
	$(VENV_PY) -m pip install --quiet -r requirements-test.txt
	touch $(VENV_STAMP)

# The JUnit schema CI systems use (Jenkins' junit-10.xsd), for review's JUnit
# test: fetched from pytest's source distribution, hash-pinned.
JUNIT_XSD := $(VENV)/share/junit-10.xsd
$(JUNIT_XSD): $(VENV_STAMP) tools/fetch_junit_schema.py
	$(VENV_PY) tools/fetch_junit_schema.py $@

venv: $(VENV_STAMP) $(JUNIT_XSD)

demo: build
	@command -v $(TERRAFORM) >/dev/null || { echo "terraform is not installed (need 1.11+): see README"; exit 1; }
	./examples/quickstart/run.sh $(BIN_DIR)

# The real hashicorp/aws provider, unpacked in a filesystem mirror: the
# real plans of the review eval corpus are made with it (no registry needed).
AWS_MIRROR := /opt/tf-plugins
AWS_MIRROR_VERSION := 5.100.0

test: build venv
	@command -v $(TERRAFORM) >/dev/null || { echo "terraform is not installed (need 1.11+): acceptance tests cannot run"; exit 1; }
	@command -v gpg >/dev/null || { echo "gpg is not installed (Debian: apt-get install gnupg): the signed-release acceptance test needs it"; exit 1; }
	@ls $(AWS_MIRROR)/registry.terraform.io/hashicorp/aws/$(AWS_MIRROR_VERSION)/linux_amd64/terraform-provider-aws* >/dev/null 2>&1 || { echo "the hashicorp/aws $(AWS_MIRROR_VERSION) provider is not in the filesystem mirror $(AWS_MIRROR): the real-plan acceptance test (acceptance-tests/real_plans.rs) needs it; see acceptance-tests/fixtures/review/eval/README.md"; exit 1; }
	TF_ACC=1 CMK_VENV=$(CURDIR)/$(VENV) $(CARGO) test --release --lib --bins --tests -- --test-threads=2

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings

# The six figures of BENCHMARKS.md, in one run (bench/bench.py), with the
# share of checks review decides on the evaluation corpus (with and without
# variables; `bench/bench.py target/release --corpus-share` prints it alone);
# the two scripts it builds on also run alone: bench/plan_bench.sh,
# bench/review_bench.sh.
bench: build venv
	CMK_BENCH_COMMAND="make bench" CMK_VENV=$(CURDIR)/$(VENV) $(PYTHON) bench/bench.py $(BIN_DIR) --out BENCHMARKS.md

# Bounded fuzzing on the stable toolchain: the proptest targets named
# `fuzz` (msgpack and refinement decoder, JSON decoder, ARN and id parsing,
# path segments, the IAM policy evaluator, unknowns placed at random depths
# of every resource's and data source's configuration) with many cases each. `make test`
# runs the same targets with a few cases. A failure prints the minimal input;
# proptest keeps it under proptest-regressions/ and replays it first.
FUZZ_CASES ?= 20000
fuzz:
	CMK_FUZZ_CASES=$(FUZZ_CASES) $(CARGO) test --release --lib fuzz -- --test-threads=2

docs:
	$(CARGO) run --quiet -- docs --out docs

# A signed release in the registry layout (docs/releasing.md): per platform a
# zip, the SHA256SUMS and its detached GPG signature, the public key, the
# manifest, and the mirror layout under $(DIST_DIR)/mirror. The binaries come
# from the `dist` profile (the release build without debug info), one per
# platform of RELEASE_PLATFORMS (tools/release-platforms.toml says which
# Rust target and linker each needs; linux_arm64 needs
# `rustup target add aarch64-unknown-linux-gnu` and Debian's gcc-aarch64-linux-gnu).
# The signing key: GPG_KEY_ID (a key id or fingerprint), from the keyring
# GNUPGHOME names (~/.gnupg when unset).
DIST_DIR := dist
RELEASE_PLATFORMS ?= linux_amd64 linux_arm64
GPG_KEY_ID ?=
release:
	@if [ -z "$(GPG_KEY_ID)" ]; then \
	  echo "make release signs the SHA256SUMS with a GPG key; give its id or fingerprint:"; \
	  echo "  make release GPG_KEY_ID=<key id>                  (key in ~/.gnupg)"; \
	  echo "  GNUPGHOME=/path/to/keyring make release GPG_KEY_ID=<key id>"; \
	  echo "List secret keys: gpg --list-secret-keys --keyid-format long"; \
	  echo "Create one:       gpg --quick-gen-key 'Your Name <you@example.com>' rsa4096 sign 2y"; \
	  echo "The registry needs the public key: gpg --armor --export <key id> (also written to $(DIST_DIR)/)."; \
	  echo "Unsigned archives for a mirror only: make release-unsigned"; \
	  exit 2; \
	fi
	rm -rf $(DIST_DIR)
	$(PYTHON) tools/package_release.py $(DIST_DIR) $(addprefix --build ,$(RELEASE_PLATFORMS)) --gpg-key "$(GPG_KEY_ID)"

# This machine's platform only, unsigned: what a filesystem or network mirror
# serves (Terraform then reports the install as unauthenticated).
release-unsigned:
	rm -rf $(DIST_DIR)
	$(PYTHON) tools/package_release.py $(DIST_DIR) --build linux_amd64

# terraform-provider-cmk and cmk-sandbox on PATH ($(PREFIX)/bin), and the
# provider where `terraform init` finds it with no CLI configuration
# ($(PLUGIN_DIR), one of Terraform's implied local mirror directories).
PREFIX ?= $(HOME)/.local
PLUGIN_DIR ?= $(HOME)/.terraform.d/plugins
install: build
	tools/install.sh $(BIN_DIR) $(PREFIX) $(PLUGIN_DIR)

clean:
	$(CARGO) clean
	rm -rf $(VENV)
