#!/usr/bin/env python3
"""Packages the built provider the way Terraform installs released providers.

Writes, into OUT_DIR:

  terraform-provider-cmk_<version>_<os>_<arch>.zip   the binary, named
                                                     terraform-provider-cmk_v<version>
  terraform-provider-cmk_<version>_manifest.json     {"version": 1, "metadata":
                                                     {"protocol_versions": ["6.0"]}}
  terraform-provider-cmk_<version>_SHA256SUMS        sha256 of the zip and the manifest
  mirror/registry.terraform.io/databricks-cmk/cmk/   what a mirror serves:
      terraform-provider-cmk_<version>_<os>_<arch>.zip   the packed layout a
                                                     `filesystem_mirror` reads
      index.json, <version>.json                     the provider network mirror
                                                     protocol's files (hashes "zh:")

The version is the binary's own (`--version`, i.e. Cargo.toml's). The zip is
reproducible: fixed timestamps and permissions, so the same binary gives the
same bytes and the same `zh:` hash. Only Python's standard library is used.

Usage: package_release.py BINARY OUT_DIR [--source-host H] [--namespace N]
"""

import argparse
import hashlib
import json
import os
import platform
import re
import subprocess
import sys
import zipfile

TYPE = "cmk"
NAME = "terraform-provider-" + TYPE
# 1980-01-01, the earliest time a zip entry can hold: no build time leaks in.
ZIP_TIME = (1980, 1, 1, 0, 0, 0)


def fail(msg):
    sys.exit("package_release.py: " + msg)


def target_platform():
    """Terraform's <os>_<arch> for this machine (the binary was built for it)."""
    os_name = {"linux": "linux", "darwin": "darwin", "windows": "windows", "freebsd": "freebsd"}.get(
        sys.platform if sys.platform != "win32" else "windows",
        platform.system().lower(),
    )
    machine = platform.machine().lower()
    arch = {
        "x86_64": "amd64",
        "amd64": "amd64",
        "aarch64": "arm64",
        "arm64": "arm64",
        "i386": "386",
        "i686": "386",
        "armv7l": "arm",
    }.get(machine)
    if arch is None:
        fail(f"unknown machine architecture {machine!r}: add it to target_platform()")
    return f"{os_name}_{arch}"


def binary_version(binary):
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False)
    m = re.fullmatch(rf"{NAME} (\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?)\s*", out.stdout)
    if out.returncode != 0 or not m:
        fail(f"{binary} --version answered {out.stdout!r} {out.stderr!r}; build it first (make build)")
    return m.group(1)


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_zip(binary, version, zip_path):
    info = zipfile.ZipInfo(f"{NAME}_v{version}", date_time=ZIP_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.create_system = 3  # Unix, so the mode below is honoured on extract
    info.external_attr = (0o100755 & 0xFFFF) << 16
    with open(binary, "rb") as f:
        data = f.read()
    with zipfile.ZipFile(zip_path, "w") as z:
        z.writestr(info, data)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("binary")
    p.add_argument("out_dir")
    p.add_argument("--source-host", default="registry.terraform.io")
    p.add_argument("--namespace", default="databricks-cmk")
    a = p.parse_args()

    if not os.access(a.binary, os.X_OK):
        fail(f"{a.binary} is not an executable; build it first (make build)")
    version = binary_version(a.binary)
    plat = target_platform()
    os.makedirs(a.out_dir, exist_ok=True)

    zip_name = f"{NAME}_{version}_{plat}.zip"
    zip_path = os.path.join(a.out_dir, zip_name)
    write_zip(a.binary, version, zip_path)

    manifest_name = f"{NAME}_{version}_manifest.json"
    with open(os.path.join(a.out_dir, manifest_name), "w") as f:
        json.dump({"version": 1, "metadata": {"protocol_versions": ["6.0"]}}, f, indent=2)
        f.write("\n")

    sums_name = f"{NAME}_{version}_SHA256SUMS"
    with open(os.path.join(a.out_dir, sums_name), "w") as f:
        for n in sorted([zip_name, manifest_name]):
            f.write(f"{sha256(os.path.join(a.out_dir, n))}  {n}\n")

    mirror = os.path.join(a.out_dir, "mirror", a.source_host, a.namespace, TYPE)
    os.makedirs(mirror, exist_ok=True)
    with open(zip_path, "rb") as src, open(os.path.join(mirror, zip_name), "wb") as dst:
        dst.write(src.read())
    zh = "zh:" + sha256(zip_path)
    # Network mirror protocol: index.json lists versions, <version>.json the
    # archives per platform with their hashes.
    index_path = os.path.join(mirror, "index.json")
    versions = {}
    if os.path.exists(index_path):
        with open(index_path) as f:
            versions = json.load(f).get("versions", {})
    versions[version] = {}
    with open(index_path, "w") as f:
        json.dump({"versions": dict(sorted(versions.items()))}, f, indent=2)
        f.write("\n")
    version_path = os.path.join(mirror, f"{version}.json")
    archives = {}
    if os.path.exists(version_path):
        with open(version_path) as f:
            archives = json.load(f).get("archives", {})
    archives[plat] = {"url": zip_name, "hashes": [zh]}
    with open(version_path, "w") as f:
        json.dump({"archives": dict(sorted(archives.items()))}, f, indent=2)
        f.write("\n")

    for n in [zip_name, sums_name, manifest_name]:
        print(os.path.join(a.out_dir, n))
    print(os.path.join(a.out_dir, "mirror") + "/  (filesystem_mirror / network mirror layout)")
    print(f"{zh}  {zip_name}")


if __name__ == "__main__":
    main()
