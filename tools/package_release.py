#!/usr/bin/env python3
"""Packages the built provider the way Terraform installs released providers.

Writes, into OUT_DIR (the layout the Terraform registry protocol serves):

  terraform-provider-cmk_<version>_<os>_<arch>.zip   per platform: the binary,
                                                     named terraform-provider-cmk_v<version>
                                                     (.exe on Windows)
  terraform-provider-cmk_<version>_manifest.json     terraform-registry-manifest.json
                                                     (protocol_versions ["6.0"])
  terraform-provider-cmk_<version>_SHA256SUMS        sha256 of every zip and the manifest
  terraform-provider-cmk_<version>_SHA256SUMS.sig    detached binary GPG signature of
                                                     SHA256SUMS (with --gpg-key)
  terraform-provider-cmk_<version>_signing-key.asc   the signing key's public part,
                                                     ASCII-armored (with --gpg-key)
  mirror/<source-host>/<namespace>/cmk/              what a mirror serves:
      terraform-provider-cmk_<version>_<os>_<arch>.zip   the packed layout a
                                                     `filesystem_mirror` reads
      index.json, <version>.json                     the provider network mirror
                                                     protocol's files (hashes "zh:")

The binaries: `BINARY` (this machine's platform), `--binary PLATFORM=PATH`
(any platform of tools/release-platforms.toml, its header checked), or
`--build PLATFORM` (cargo builds it here with the `dist` profile, for the
target and linker the table gives).

The version is Cargo.toml's; every binary that runs here (natively, or under
the platform's `emulator` when that is installed) must report it
(`--version`). The zips are reproducible: fixed timestamps and permissions,
so the same binary gives the same bytes and the same `zh:` hash.

Signing: `--gpg-key KEY` (a key id or fingerprint whose secret key is in the
keyring; GNUPGHOME chooses the keyring) signs SHA256SUMS with gpg, verifies
the signature, and exports the public key. Without it the release is
unsigned, which a mirror accepts and the registry protocol does not.

Usage: package_release.py [BINARY] OUT_DIR [--binary P=PATH]... [--build P]...
                          [--gpg-key KEY] [--source-host H] [--namespace N]
"""

import argparse
import hashlib
import json
import os
import platform
import shutil
import struct
import subprocess
import sys
import tomllib
import zipfile

TYPE = "cmk"
NAME = "terraform-provider-" + TYPE
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PLATFORMS_FILE = os.path.join(REPO, "tools", "release-platforms.toml")
MANIFEST_FILE = os.path.join(REPO, "terraform-registry-manifest.json")
# 1980-01-01, the earliest time a zip entry can hold: no build time leaks in.
ZIP_TIME = (1980, 1, 1, 0, 0, 0)


def fail(msg):
    sys.exit("package_release.py: " + msg)


def platforms():
    with open(PLATFORMS_FILE, "rb") as f:
        return tomllib.load(f)["platforms"]


def host_platform():
    """Terraform's <os>_<arch> for this machine."""
    os_name = {"linux": "linux", "darwin": "darwin", "win32": "windows", "freebsd": "freebsd"}.get(
        sys.platform, platform.system().lower()
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
        fail(f"unknown machine architecture {machine!r}: add it to host_platform()")
    return f"{os_name}_{arch}"


def binary_platform(path):
    """The <os>_<arch> a binary's header says it is for, or None."""
    with open(path, "rb") as f:
        head = f.read(4096)
    if head[:4] == b"\x7fELF":
        little = head[5] == 1
        (machine,) = struct.unpack("<H" if little else ">H", head[18:20])
        osabi = head[7]
        os_name = {0: "linux", 3: "linux", 9: "freebsd"}.get(osabi)
        arch = {62: "amd64", 183: "arm64", 3: "386", 40: "arm"}.get(machine)
    elif head[:4] in (b"\xcf\xfa\xed\xfe", b"\xce\xfa\xed\xfe"):
        (cpu,) = struct.unpack("<I", head[4:8])
        os_name = "darwin"
        arch = {0x01000007: "amd64", 0x0100000C: "arm64"}.get(cpu)
    elif head[:2] == b"MZ" and len(head) >= 0x40:
        (pe,) = struct.unpack("<I", head[0x3C:0x40])
        if head[pe : pe + 4] != b"PE\0\0":
            return None
        (machine,) = struct.unpack("<H", head[pe + 4 : pe + 6])
        os_name = "windows"
        arch = {0x8664: "amd64", 0xAA64: "arm64", 0x14C: "386"}.get(machine)
    else:
        return None
    if os_name is None or arch is None:
        return None
    return f"{os_name}_{arch}"


def cargo_version():
    with open(os.path.join(REPO, "Cargo.toml"), "rb") as f:
        return tomllib.load(f)["package"]["version"]


def check_binary_version(binary, version, emulator=()):
    out = subprocess.run([*emulator, binary, "--version"], capture_output=True, text=True, check=False)
    if out.returncode != 0 or out.stdout.strip() != f"{NAME} {version}":
        fail(
            f"{binary} --version answered {out.stdout.strip()!r} {out.stderr.strip()!r}, "
            f"not {NAME} {version} (Cargo.toml's): build it again (make build)"
        )


def build(plat, table):
    """cargo build --profile dist for `plat`; the binary's path."""
    spec = table[plat]
    target = spec["rust_target"]
    host = subprocess.run(["rustc", "-vV"], capture_output=True, text=True, check=True).stdout
    host_triple = next(l.split(": ", 1)[1] for l in host.splitlines() if l.startswith("host: "))
    cmd = [os.environ.get("CARGO", "cargo"), "build", "--profile", "dist", "--bin", NAME]
    env = dict(os.environ)
    if target == host_triple:
        out = os.path.join(REPO, "target", "dist", NAME)
    else:
        installed = subprocess.run(
            ["rustup", "target", "list", "--installed"], capture_output=True, text=True, check=False
        ).stdout.split()
        if target not in installed:
            fail(f"{plat} needs the Rust target {target}: rustup target add {target}")
        cmd += ["--target", target]
        linker = spec.get("linker")
        if linker:
            if shutil.which(linker) is None:
                fail(f"{plat} needs the linker {linker} (Debian: apt-get install gcc-{linker.rsplit('-', 1)[0]})")
            env[f"CARGO_TARGET_{target.upper().replace('-', '_')}_LINKER"] = linker
            # aws-lc-sys compiles C for the target with the same toolchain.
            prefix = linker.rsplit("-", 1)[0]
            env.setdefault(f"CC_{target.replace('-', '_')}", linker)
            env.setdefault(f"AR_{target.replace('-', '_')}", f"{prefix}-ar")
        out = os.path.join(REPO, "target", target, "dist", NAME)
    if plat.startswith("windows_"):
        out += ".exe"
    print("+ " + " ".join(cmd), file=sys.stderr)
    if subprocess.run(cmd, cwd=REPO, env=env).returncode != 0:
        fail(f"cargo build for {plat} ({target}) failed")
    return out


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_zip(binary, member, zip_path):
    info = zipfile.ZipInfo(member, date_time=ZIP_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.create_system = 3  # Unix, so the mode below is honoured on extract
    info.external_attr = (0o100755 & 0xFFFF) << 16
    with open(binary, "rb") as f:
        data = f.read()
    with zipfile.ZipFile(zip_path, "w") as z:
        z.writestr(info, data)


def gpg(args, **kw):
    return subprocess.run([os.environ.get("GPG", "gpg"), "--batch", *args], capture_output=True, **kw)


def signing_key(key):
    """The long key id and fingerprint of `key`, which must have a secret key here."""
    o = gpg(["--with-colons", "--list-secret-keys", key], text=True)
    if o.returncode != 0:
        where = os.environ.get("GNUPGHOME", "~/.gnupg")
        fail(
            f"no secret GPG key {key!r} in the keyring {where} ({o.stderr.strip()}): "
            "list yours with `gpg --list-secret-keys --keyid-format long`, "
            "or set GNUPGHOME to the keyring that holds it"
        )
    lines = [l.split(":") for l in o.stdout.splitlines()]
    sec = [l for l in lines if l[0] == "sec"]
    fpr = [l[9] for l in lines if l[0] == "fpr"]
    if len(sec) != 1:
        fail(f"{key!r} names {len(sec)} secret keys: give the full fingerprint")
    return sec[0][4], fpr[0]


def sign(sums_path, sig_path, key_id):
    o = gpg(["--yes", "--local-user", key_id, "--detach-sign", "--output", sig_path, sums_path])
    if o.returncode != 0:
        fail(f"gpg could not sign {sums_path}: {o.stderr.decode(errors='replace').strip()}")
    # The signature must verify before anything is published.
    o = gpg(["--status-fd", "1", "--verify", sig_path, sums_path], text=True)
    good = [l for l in o.stdout.splitlines() if l.startswith("[GNUPG:] VALIDSIG ")]
    if o.returncode != 0 or not good:
        fail(f"the signature of {sums_path} does not verify: {o.stderr.strip()}")


def write_json(path, value):
    with open(path, "w") as f:
        json.dump(value, f, indent=2)
        f.write("\n")


def main():
    p = argparse.ArgumentParser(
        usage="%(prog)s [BINARY] OUT_DIR [--binary P=PATH]... [--build P]... [--gpg-key KEY] [...]",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("paths", nargs="+", metavar="[BINARY] OUT_DIR")
    p.add_argument("--binary", action="append", default=[], metavar="PLATFORM=PATH")
    p.add_argument("--build", action="append", default=[], metavar="PLATFORM")
    p.add_argument("--gpg-key", default=os.environ.get("GPG_KEY_ID") or None)
    p.add_argument("--source-host", default="registry.terraform.io")
    p.add_argument("--namespace", default="databricks-cmk")
    a = p.parse_args()
    if len(a.paths) > 2:
        p.error("at most BINARY and OUT_DIR")
    out_dir = a.paths[-1]
    table = platforms()
    version = cargo_version()

    key = signing_key(a.gpg_key) if a.gpg_key else None

    binaries = {}
    if len(a.paths) == 2:
        binaries[host_platform()] = a.paths[0]
    for spec in a.binary:
        plat, sep, path = spec.partition("=")
        if not sep:
            p.error(f"--binary {spec!r}: give PLATFORM=PATH")
        binaries[plat] = path
    for plat in a.build:
        if plat not in table:
            fail(f"--build {plat}: not in {PLATFORMS_FILE} ({', '.join(table)})")
        binaries[plat] = build(plat, table)
    if not binaries:
        p.error("no binary: give BINARY, --binary or --build")

    for plat, path in binaries.items():
        if plat not in table:
            fail(f"{plat}: not a platform of {PLATFORMS_FILE} ({', '.join(table)})")
        if not os.path.isfile(path):
            fail(f"{path} is missing: build it first (make build)")
        found = binary_platform(path)
        if found != plat:
            fail(f"{path} is a binary for {found or 'no known platform'}, not {plat}")
        if plat == host_platform():
            check_binary_version(path, version)
        else:
            emulator = table[plat].get("emulator")
            if emulator and shutil.which(emulator[0]):
                check_binary_version(path, version, emulator)
                print(f"{plat}: {path} --version checked under {emulator[0]}", file=sys.stderr)
            else:
                print(f"{plat}: {path} not run here (header checked only)", file=sys.stderr)

    os.makedirs(out_dir, exist_ok=True)
    mirror = os.path.join(out_dir, "mirror", a.source_host, a.namespace, TYPE)
    os.makedirs(mirror, exist_ok=True)
    zips = {}
    for plat in sorted(binaries):
        zip_name = f"{NAME}_{version}_{plat}.zip"
        member = f"{NAME}_v{version}" + (".exe" if plat.startswith("windows_") else "")
        write_zip(binaries[plat], member, os.path.join(out_dir, zip_name))
        shutil.copyfile(os.path.join(out_dir, zip_name), os.path.join(mirror, zip_name))
        zips[plat] = zip_name

    with open(MANIFEST_FILE) as f:
        manifest = json.load(f)
    if manifest.get("metadata", {}).get("protocol_versions") != ["6.0"]:
        fail(f"{MANIFEST_FILE} must name protocol_versions [\"6.0\"] (the provider speaks protocol 6)")
    manifest_name = f"{NAME}_{version}_manifest.json"
    write_json(os.path.join(out_dir, manifest_name), manifest)

    sums_name = f"{NAME}_{version}_SHA256SUMS"
    sums_path = os.path.join(out_dir, sums_name)
    with open(sums_path, "w") as f:
        for n in sorted([*zips.values(), manifest_name]):
            f.write(f"{sha256(os.path.join(out_dir, n))}  {n}\n")
    written = [*zips.values(), manifest_name, sums_name]

    if key:
        key_id, fingerprint = key
        sig_name = f"{sums_name}.sig"
        sign(sums_path, os.path.join(out_dir, sig_name), fingerprint)
        o = gpg(["--armor", "--export", fingerprint])
        if o.returncode != 0 or not o.stdout.startswith(b"-----BEGIN PGP PUBLIC KEY BLOCK-----"):
            fail(f"gpg could not export the public key {fingerprint}: {o.stderr.decode(errors='replace')}")
        key_name = f"{NAME}_{version}_signing-key.asc"
        with open(os.path.join(out_dir, key_name), "wb") as f:
            f.write(o.stdout)
        written += [sig_name, key_name]

    # Network mirror protocol: index.json lists versions, <version>.json the
    # archives per platform with their hashes.
    index_path = os.path.join(mirror, "index.json")
    versions = {}
    if os.path.exists(index_path):
        with open(index_path) as f:
            versions = json.load(f).get("versions", {})
    versions[version] = {}
    write_json(index_path, {"versions": dict(sorted(versions.items()))})
    version_path = os.path.join(mirror, f"{version}.json")
    archives = {}
    if os.path.exists(version_path):
        with open(version_path) as f:
            archives = json.load(f).get("archives", {})
    for plat, zip_name in zips.items():
        archives[plat] = {"url": zip_name, "hashes": ["zh:" + sha256(os.path.join(out_dir, zip_name))]}
    write_json(version_path, {"archives": dict(sorted(archives.items()))})

    for n in written:
        print(os.path.join(out_dir, n))
    print(os.path.join(out_dir, "mirror") + "/  (filesystem_mirror / network mirror layout)")
    for zip_name in zips.values():
        print(f"zh:{sha256(os.path.join(out_dir, zip_name))}  {zip_name}")
    if key:
        print(f"signed by GPG key {key[0]} (fingerprint {key[1]})")
    else:
        print("unsigned: no --gpg-key (GPG_KEY_ID); a registry needs a signed SHA256SUMS", file=sys.stderr)


if __name__ == "__main__":
    main()
