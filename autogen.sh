#!/bin/sh
# Generates the build system from a git checkout: ./autogen.sh && ./configure && make
set -e
srcdir=$(dirname "$0")
test -n "$srcdir" || srcdir=.
cd "$srcdir"
autoreconf --force --install --verbose
