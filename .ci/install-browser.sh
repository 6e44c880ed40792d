#!/usr/bin/env bash
# Install Debian's chromium and chromium-driver for the UI browser test (tests/ui, marker "browser").
# Never downloads a browser from elsewhere: Selenium drives /usr/bin/chromium through /usr/bin/chromedriver.
set -euo pipefail
if [[ -x /usr/bin/chromium && -x /usr/bin/chromedriver ]]; then
  echo "chromium and chromedriver already installed: $(/usr/bin/chromium --version 2>/dev/null | head -n 1)"
  exit 0
fi
SUDO=""
if [[ "$(id -u)" -ne 0 ]]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update
$SUDO apt-get install -y chromium chromium-driver
/usr/bin/chromium --version 2>/dev/null | head -n 1
