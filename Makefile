# trustroot.ops — the two commands in the README, and the pieces `make test` is made of.
SHELL := /bin/bash
VENV  := .venv/bin
export PATH := $(CURDIR)/$(VENV):$(CURDIR)/.cache/bin:$(PATH)
export ANSIBLE_COLLECTIONS_PATH := $(CURDIR)/.cache/collections

.PHONY: bootstrap demo demo-down test lint sanity unit integration molecule build benchmark clean

bootstrap:
	@scripts/bootstrap.sh

demo: bootstrap
	@scripts/demo.sh

demo-down:
	@scripts/demo.sh down

test:  # runs the bootstrap itself, as its first timed phase
	@scripts/test.sh

lint: bootstrap
	$(VENV)/ansible-lint --profile production

sanity: bootstrap
	scripts/sanity.sh

unit: bootstrap
	$(VENV)/pytest -q tests/unit

integration: bootstrap
	$(VENV)/pytest -q -n 2 --dist loadfile tests/integration

molecule: bootstrap
	scripts/molecule.sh $(SCENARIO)

build: bootstrap
	$(VENV)/ansible-galaxy collection build --force --output-path .cache/dist

.PHONY: docs
docs: bootstrap  # the collection docs site (antsibull-docs + Sphinx, warnings are errors) into .cache/docs-site
	@scripts/docs_check.sh build

benchmark: bootstrap
	$(VENV)/python benchmarks/vault_unseal.py

clean:
	rm -rf .cache/dist tests/output .pytest_cache

.PHONY: ee
ee: bootstrap  # the execution environment image for AWX (ee/build.sh; see docs/awx.md)
	@ee/build.sh
