"""A throw-away certificate authority and broker certificate for the TLS tests (no tests here).

Made with the ``openssl`` command line (every Debian/Ubuntu has it): an EC P-256 CA, a server
certificate for 127.0.0.1/localhost signed by it, and a PKCS#12 keystore holding the server's key
and chain, which the Java broker reads directly.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

OPENSSL = shutil.which("openssl")
needs_openssl = pytest.mark.skipif(OPENSSL is None, reason="openssl is not installed")


@dataclass(frozen=True)
class Pki:
    ca_cert: Path  # PEM, what clients trust
    server_cert: Path  # PEM, leaf only
    keystore: Path  # PKCS#12: server key + certificate + CA
    keystore_password: str
    other_ca_cert: Path  # PEM of an unrelated CA, to show that verification really happens


def _openssl(*args: str, cwd: Path) -> None:
    assert OPENSSL is not None
    result = subprocess.run(
        [OPENSSL, *args], cwd=cwd, capture_output=True, text=True, check=False, timeout=60
    )
    if result.returncode != 0:
        raise RuntimeError(f"openssl {args[0]} failed: {result.stderr.strip()[-500:]}")


def _self_signed_ca(directory: Path, name: str) -> tuple[Path, Path]:
    key, cert = directory / f"{name}.key", directory / f"{name}.pem"
    _openssl(
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        str(key),
        "-out",
        str(cert),
        "-days",
        "2",
        "-subj",
        f"/CN=Stormvarsel test {name}",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
        cwd=directory,
    )
    return key, cert


def make_pki(directory: Path, keystore_password: str) -> Pki:
    """A CA, a broker certificate for 127.0.0.1 and localhost, and the broker's keystore."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, ca_cert = _self_signed_ca(directory, "ca")
    _other_key, other_cert = _self_signed_ca(directory, "other-ca")
    key, csr, cert = directory / "broker.key", directory / "broker.csr", directory / "broker.pem"
    _openssl(
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        str(key),
        "-out",
        str(csr),
        "-subj",
        "/CN=127.0.0.1",
        cwd=directory,
    )
    extensions = directory / "broker.ext"
    extensions.write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
        "basicConstraints=CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth,clientAuth\n",
        encoding="utf-8",
    )
    _openssl(
        "x509",
        "-req",
        "-in",
        str(csr),
        "-CA",
        str(ca_cert),
        "-CAkey",
        str(ca_key),
        "-CAcreateserial",
        "-out",
        str(cert),
        "-days",
        "2",
        "-extfile",
        str(extensions),
        cwd=directory,
    )
    keystore = directory / "broker.p12"
    _openssl(
        "pkcs12",
        "-export",
        "-in",
        str(cert),
        "-inkey",
        str(key),
        "-certfile",
        str(ca_cert),
        "-name",
        "broker",
        "-out",
        str(keystore),
        "-passout",
        f"pass:{keystore_password}",
        cwd=directory,
    )
    for private in (ca_key, key):
        private.chmod(0o600)
    return Pki(ca_cert, cert, keystore, keystore_password, other_cert)
