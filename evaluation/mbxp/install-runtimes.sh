#!/usr/bin/env bash
# Installs what MBXP evaluation runs model-written code with: bubblewrap (the sandbox) and the language runtimes
# (php, ruby, g++, node) from Debian where missing (as root), and the pinned TypeScript 5 and lodash from npm into
# the virtual environment. A language still missing afterwards is reported by the evaluation as not evaluated.
set -u
venv=${1:?usage: install-runtimes.sh VENV}
missing=()
for pair in bwrap:bubblewrap php:php-cli ruby:ruby g++:g++ node:nodejs npm:npm; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing MBXP runtimes from Debian: ${missing[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" \
      || echo "llmkit: could not install ${missing[*]}; MBXP languages without a runtime are reported as not evaluated" >&2
  else
    echo "llmkit: missing ${missing[*]} (install them as root); MBXP languages without them are reported as not evaluated" >&2
  fi
fi
if command -v npm >/dev/null 2>&1; then
  npm install --silent --no-audit --no-fund --prefix "$venv/node" typescript@5.9.3 lodash@4.17.21 \
    || echo "llmkit: npm could not install typescript@5.9.3 and lodash@4.17.21; typescript is reported as not evaluated" >&2
fi
exit 0
