#!/bin/sh
# Prints the crate's version from Cargo.toml's [package] table.
sed -n '/^\[package\]/,/^\[/s/^version *= *"\(.*\)"/\1/p' "$(dirname "$0")/../Cargo.toml" | head -n 1
