# The front door. Needs only python3 (3.11+), make and git: everything else is
# installed into the project-local .venv (hatch) and .hatch (environments).

PYTHON ?= python3
VENV   := .venv
HATCH  := $(VENV)/bin/hatch
export HATCH_DATA_DIR := $(CURDIR)/.hatch
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION := 1
# jsii names the Node.js majors whose end-of-life banner it may skip.
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20,22
export PIP_DISABLE_PIP_VERSION_CHECK := 1

PACKAGES := coverage-wrapper coverage-combiner coverage-cdk-constructs
COMPAT_PYTHONS := 3.10 3.12 3.13

.DEFAULT_GOAL := help

.PHONY: help
help: ## Show the targets
	@grep -hE '^[a-z][a-zA-Z_ -]*:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-34s %s\n", $$1, $$2}'

$(HATCH):
	$(PYTHON) -c 'import sys; sys.exit("python3 >= 3.11 is required" if sys.version_info < (3, 11) else 0)'
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet 'hatch>=1.16'

.PHONY: install
install: $(HATCH) ## Create the development environment
	$(HATCH) env create

.PHONY: demo
demo: install ## Run the main job end to end on moto's S3 (no AWS account)
	$(HATCH) run demo

.PHONY: test
test: install ## Run the test suite (and the wrapper's tests on every other Python found)
	$(HATCH) run test
	@$(MAKE) --no-print-directory test-compat

.PHONY: test-compat
test-compat: $(HATCH) ## Run the wrapper's tests on Python 3.10, 3.12 and 3.13 where installed
	@for v in $(COMPAT_PYTHONS); do \
	  dir=$$(pyenv prefix $$v 2>/dev/null)/bin; \
	  if [ -x "$$dir/python$$v" ] || python$$v -c pass >/dev/null 2>&1; then \
	    echo "== wrapper tests on Python $$v"; \
	    PATH="$$dir:$$PATH" $(HATCH) run compat.py$$v:test -q || exit 1; \
	  else \
	    echo "== Python $$v not found: skipping the wrapper's tests on it"; \
	  fi; \
	done

.PHONY: bench-wrapper
bench-wrapper: install ## Measure the wrapper's cold-start and per-invocation cost (see BENCHMARKS.md)
	$(HATCH) run bench-wrapper

.PHONY: bench-lifecycle
bench-lifecycle: install ## On the local runtime: caller-visible latency and objects written, bare vs naive vs the layer per flush policy (see BENCHMARKS.md)
	$(HATCH) run bench-lifecycle --invocations 1000

.PHONY: bench-combiner
bench-combiner: install ## Time the combiner against coverage combine on 2,000 and 20,000 files (see BENCHMARKS.md)
	$(HATCH) run bench-combiner --files 2000 20000

.PHONY: types
types: install ## mypy --strict over packages, apps, tests and benchmarks
	$(HATCH) run types

.PHONY: lint
lint: install ## ruff check and format check
	$(HATCH) run lint

.PHONY: fmt
fmt: install ## Apply ruff fixes and formatting
	$(HATCH) run fmt

.PHONY: version
version: ## Show each package's version
	@for p in $(PACKAGES); do \
	  printf '%-26s %s\n' $$p "$$(sed -n 's/^__version__ = "\(.*\)"/\1/p' packages/$$p/src/*/__about__.py)"; \
	done

.PHONY: bump-patch bump-minor bump-major
bump-patch bump-minor bump-major: $(HATCH) ## Bump a package's version: make bump-minor PKG=coverage-wrapper
	@test -n "$(PKG)" || { echo "name the package: make $@ PKG=<one of: $(PACKAGES)>"; exit 2; }
	@test -d packages/$(PKG) || { echo "no package '$(PKG)'; choose one of: $(PACKAGES)"; exit 2; }
	cd packages/$(PKG) && ../../$(HATCH) version $(subst bump-,,$@)

.PHONY: clean
clean: ## Remove build output, caches and the environments
	rm -rf $(VENV) .hatch dist build out .pytest_cache .mypy_cache .ruff_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

# --- Load tests of the test stack --------------------------------------------
# The local runtime (awslambdaric containers, moto's S3) by default; a deployed
# stack with LOAD_TEST_ARGS="--target aws --stack NAME"; more: LOAD_TEST_ARGS=--help.
LOAD_TEST_ARGS ?=

.PHONY: load-test load-test-quick load-test-full
load-test: install ## Load-test the test stack, 2 iterations (LOAD_TEST_ARGS="--target aws --stack NAME")
	$(HATCH) run python -m test_stack.loadtest --iterations 2 $(LOAD_TEST_ARGS)

load-test-quick: install ## Load-test the test stack, 1 iteration
	$(HATCH) run python -m test_stack.loadtest --iterations 1 $(LOAD_TEST_ARGS)

load-test-full: install ## Load-test the test stack, 5 iterations
	$(HATCH) run python -m test_stack.loadtest --iterations 5 $(LOAD_TEST_ARGS)

# Faults under load on the local runtime, checked against the ground truth
# (figures in RELIABILITY.md).
.PHONY: reliability reliability-soak
reliability: install ## Load under every S3 fault (about 45 s), containers retired mid-run; prints RELIABILITY.md's figures
	$(HATCH) run python -m test_stack.reliability

reliability-soak: install ## The long run of the same: 20 s windows, more containers and callers (about 6 minutes)
	$(HATCH) run python -m test_stack.reliability --soak

# --- CDK: the coverage layer, the examples app and the test stack -----------
# cdk-synth and build-layer run offline here (coverage.py's Lambda wheels are
# downloaded once into ~/.cache/lambda-coverage). The deploy targets need an
# AWS account, credentials and a bootstrapped environment (cdk bootstrap);
# they drive the CDK CLI through npx. Extra CLI flags: CDK_ARGS="--profile x".
CDK         ?= npx --yes aws-cdk@2
CDK_ARGS    ?=
STACK       ?= LambdaCoverageTestStack
EXAMPLES_STACK := LambdaCoverageExamples
LAYER_DIR   ?= dist/layers

.PHONY: build validate build-layer cdk-synth cdk-deploy cdk-destroy test-deploy test-destroy test-status
build: install ## Build the coverage layer zips for x86_64 and arm64 into dist/layers (+ build.json)
	$(HATCH) run lambda-coverage-layer build --output $(LAYER_DIR)

validate: install ## Validate the layer zips in dist/layers (layout, limits, tracers, a start here)
	$(HATCH) run lambda-coverage-layer validate $(LAYER_DIR)/*.zip

build-layer: build ## The same as make build

cdk-synth: install ## Synthesise the examples app and the test stack offline, cdk-nag checks included
	CDK_OUTDIR=apps/examples/cdk.out $(HATCH) run python -m examples_app
	CDK_OUTDIR=apps/test-stack/cdk.out $(HATCH) run python -m test_stack_cdk
	@echo "templates in apps/examples/cdk.out and apps/test-stack/cdk.out"

cdk-deploy: install ## Deploy the examples app (needs AWS credentials; CDK_ARGS="-c stage=prod")
	$(HATCH) run bash -c 'cd apps/examples && $(CDK) deploy $(EXAMPLES_STACK) --require-approval never $(CDK_ARGS)'

cdk-destroy: install ## Destroy the examples app and its coverage data
	$(HATCH) run bash -c 'cd apps/examples && $(CDK) destroy $(EXAMPLES_STACK) --force $(CDK_ARGS)'

test-deploy: install ## Deploy the test stack as STACK (default LambdaCoverageTestStack); then make load-test LOAD_TEST_ARGS="--target aws --stack $(STACK)"
	$(HATCH) run bash -c 'cd apps/test-stack/test_stack_cdk && $(CDK) deploy $(STACK) -c stack_name=$(STACK) --require-approval never $(CDK_ARGS)'

test-destroy: install ## Destroy the test stack STACK and its coverage data
	$(HATCH) run bash -c 'cd apps/test-stack/test_stack_cdk && $(CDK) destroy $(STACK) -c stack_name=$(STACK) --force $(CDK_ARGS)'

test-status: install ## Show the deployed test stack's outputs (function names, bucket)
	$(HATCH) run python -c 'import sys, boto3; from test_stack.aws_target import stack_outputs; [print(f"{k:28} {v}") for k, v in sorted(stack_outputs(boto3.client("cloudformation"), sys.argv[1]).items())]' $(STACK)

# --- Benchmarks ---------------------------------------------------------------
# Each prints a Markdown table whose figures go into BENCHMARKS.md; every ratio
# is against a baseline measured in the same run.
.PHONY: bench bench-combiner-quick
bench: bench-wrapper bench-lifecycle bench-combiner ## Run every benchmark (the wrapper's cost in process and on the local runtime, the combiner against coverage combine)

bench-combiner-quick: install ## The combiner benchmark on 2,000 files only (under a minute)
	$(HATCH) run bench-combiner --files 2000

# --- Security and first steps -------------------------------------------------
AUDIT_ARGS ?=

.PHONY: audit
audit: install ## Audit the installed dependencies for known vulnerabilities (pip-audit; asks PyPI; AUDIT_ARGS=--strict)
	$(HATCH) run audit $(AUDIT_ARGS)

# --- Publishing the layer -----------------------------------------------------
# build and validate come from the builder; deploy publishes through the same
# publisher as the release workflow (needs AWS credentials).
REGION ?= us-east-1
ARCH   ?= x86_64

.PHONY: dev-setup install-deps dev-build dev-test deploy release-patch
dev-setup: install ## Set up the development environment (alias of install)

install-deps: install ## Install the dependencies (alias of install)

dev-build: clean build validate ## Clean, build the layer zips and validate them

dev-test: test validate ## Run the tests and validate the layer zips

deploy: build ## Publish the layer zip of ARCH (default x86_64) to REGION (default us-east-1)
	$(HATCH) run lambda-coverage-layer publish \
	  --zip $(LAYER_DIR)/lambda-coverage-layer-$(ARCH).zip --architecture $(ARCH) \
	  --regions $(REGION) --manifest $(LAYER_DIR)/layers.json

release-patch: ## Bump the wrapper's patch version (the layer's version), build and validate
	$(MAKE) --no-print-directory bump-patch PKG=coverage-wrapper
	$(MAKE) --no-print-directory build validate

# The test stack's functions on the local runtime, one call at a time. hatch
# reads {...} on its command line as its own placeholders, so the JSON event
# reaches the command through the environment, never through hatch's arguments.
FUNCTION    ?= main
EVENT       ?= {}
INVOKE_ARGS ?=

.PHONY: functions invoke cdk-bootstrap
functions: install ## List the test stack's functions (name, handler, code folder)
	$(HATCH) run python -m test_stack.local_lambda list

invoke: install ## Invoke one on the local runtime: make invoke FUNCTION=main EVENT='<JSON>' (INVOKE_ARGS="--times 20 --coverage")
	EVENT='$(EVENT)' $(HATCH) run bash -c 'python -m test_stack.local_lambda invoke "$$0" --event "$$EVENT" "$$@"' $(FUNCTION) $(INVOKE_ARGS)

cdk-bootstrap: install ## Bootstrap your AWS account and region for CDK (once per account and region; CDK_ARGS="--profile x")
	$(HATCH) run bash -c 'cd apps/test-stack/test_stack_cdk && $(CDK) bootstrap $(CDK_ARGS)'

# Combine data files from S3 or a folder into reports (the combiner's CLI).
SOURCE       ?=
OUT          ?= out/combined
COMBINE_ARGS ?=

.PHONY: combine
combine: install ## Combine data files: make combine SOURCE=s3://BUCKET/coverage/ (OUT=out/combined, COMBINE_ARGS="--source-root DIR")
	@test -n "$(SOURCE)" || { echo "name the data: make combine SOURCE=s3://BUCKET/coverage/ (or a folder of .coverage files)"; exit 2; }
	$(HATCH) run python -m coverage_combiner.cli combine $(SOURCE) --output $(OUT) $(COMBINE_ARGS)
