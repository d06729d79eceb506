# The dashboard's browser tests: Debian's chromium (debian-packages.txt, tag
# test) driven by playwright-core from npm, installed here from the lock file
# when missing.  See docs/dashboard.md.

BROWSER_DIR := tests/browser
EXTRA_TESTS += test-browser

.PHONY: test-browser

$(BROWSER_DIR)/node_modules/.package-lock.json: $(BROWSER_DIR)/package.json $(BROWSER_DIR)/package-lock.json
	@command -v node >/dev/null && command -v npm >/dev/null || \
	  { echo "test-browser: node and npm are needed (Node.js 20 or newer)"; exit 1; }
	@echo "  NPM     $(BROWSER_DIR) (npm ci)"
	@cd $(BROWSER_DIR) && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

test-browser: build/outrigger build/outrigger-step $(BROWSER_DIR)/node_modules/.package-lock.json
	node $(BROWSER_DIR)/run.js
