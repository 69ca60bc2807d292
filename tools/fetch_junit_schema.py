#!/usr/bin/env python3
"""Fetches the JUnit XML schema CI systems validate against (Jenkins' xUnit
plugin's junit-10.xsd, which pytest's own tests use) for review's JUnit test.

It is taken from the pytest source distribution on PyPI (the version pinned
in requirements-test.txt), checked against a pinned SHA-256, and written to
the path given: `make venv` puts it in the project's venv. Nothing of it is
committed here.

Usage: fetch_junit_schema.py OUT
"""
import hashlib
import os
import subprocess
import sys
import tarfile
import tempfile

PYTEST = "8.4.2"
SHA256 = "86c0d0b93306b961d58d62a4db4879f27fe25513d4b969df351abdddb3c30e01"
MEMBER = "pytest-%s/testing/example_scripts/junit-10.xsd" % PYTEST


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = sys.argv[1]
    with tempfile.TemporaryDirectory() as d:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
             "--no-binary", ":all:", "pytest==%s" % PYTEST, "-d", d],
            check=True,
        )
        sdist = os.path.join(d, "pytest-%s.tar.gz" % PYTEST)
        with open(sdist, "rb") as f:
            got = hashlib.sha256(f.read()).hexdigest()
        if got != SHA256:
            sys.exit("pytest-%s.tar.gz: SHA-256 %s, expected %s" % (PYTEST, got, SHA256))
        with tarfile.open(sdist) as t:
            data = t.extractfile(MEMBER).read()
    os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
    tmp = out + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, out)
    print("junit schema: %s (%d bytes, from pytest-%s)" % (out, len(data), PYTEST))


if __name__ == "__main__":
    main()
