#!/usr/bin/env bash
# What `make install` does, with binaries already built:
#   BIN_DIR/terraform-provider-cmk and BIN_DIR/cmk-sandbox  ->  PREFIX/bin
#   the provider, for `terraform init`                      ->  PLUGIN_DIR/registry.terraform.io/
#        databricks-cmk/cmk/<version>/<os>_<arch>/terraform-provider-cmk_v<version>
# PLUGIN_DIR defaults to ~/.terraform.d/plugins, a directory Terraform searches
# by itself when the CLI configuration has no provider_installation block: then
# `terraform init` installs the provider with no other set-up.
# Usage: tools/install.sh BIN_DIR [PREFIX] [PLUGIN_DIR]
set -euo pipefail
bin_dir=${1:?usage: install.sh BIN_DIR [PREFIX] [PLUGIN_DIR]}
prefix=${2:-$HOME/.local}
plugin_dir=${3:-$HOME/.terraform.d/plugins}
provider="$bin_dir/terraform-provider-cmk"
for b in "$provider" "$bin_dir/cmk-sandbox"; do
  [ -x "$b" ] || { echo "install.sh: $b is missing: build it first (cargo build --release --bins)" >&2; exit 1; }
done
version=$("$provider" --version | awk '{print $2}')
case "$(uname -m)" in
  x86_64 | amd64) arch=amd64 ;;
  aarch64 | arm64) arch=arm64 ;;
  *) echo "install.sh: no Terraform platform name for $(uname -m)" >&2; exit 1 ;;
esac
os=$(uname -s | tr '[:upper:]' '[:lower:]')
target="$plugin_dir/registry.terraform.io/databricks-cmk/cmk/$version/${os}_$arch"
install -d "$prefix/bin" "$target"
install -m 0755 "$provider" "$prefix/bin/terraform-provider-cmk"
install -m 0755 "$bin_dir/cmk-sandbox" "$prefix/bin/cmk-sandbox"
install -m 0755 "$provider" "$target/terraform-provider-cmk_v$version"
echo "installed $prefix/bin/terraform-provider-cmk and $prefix/bin/cmk-sandbox (version $version)"
echo "installed $target/terraform-provider-cmk_v$version (terraform init finds it)"
case ":$PATH:" in
  *":$prefix/bin:"*) ;;
  *) echo "note: $prefix/bin is not on PATH; add it: export PATH=\"$prefix/bin:\$PATH\"" ;;
esac
