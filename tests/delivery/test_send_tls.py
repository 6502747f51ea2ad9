"""``cpo send --starttls --user --password-env`` against a TLS-only, login-only server.

The server (aiosmtpd) offers STARTTLS with a certificate made here for
127.0.0.1, requires it before anything else, and requires a login over TLS.
The client verifies the certificate: the test trusts it through
``SSL_CERT_FILE`` (OpenSSL's default verify file), as a team with a private CA does.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl

import pytest
from aiosmtpd.smtp import AuthResult
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from delivery_testkit import cpo
from smtp_server import RecordingHandler, SmtpServer

USER, PASSWORD = "campaigns", "s3cret-pass"
LOCALHOST = ipaddress.ip_address("127.0.0.1")


def self_signed(folder):
    """A key and certificate for 127.0.0.1; returns (cert path, key path)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(LOCALHOST)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def check_login(server, session, envelope, mechanism, auth_data):
    ok = auth_data.login == USER.encode() and auth_data.password == PASSWORD.encode()
    return AuthResult(success=ok, handled=False)  # not handled: the server answers 535


@pytest.fixture
def tls_server(tmp_path, monkeypatch):
    cert, key = self_signed(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    options = dict(tls_context=context, require_starttls=True, authenticator=check_login,
                   auth_require_tls=True)  # fmt: skip
    with SmtpServer(RecordingHandler(), **options) as server:
        yield server


def starttls_send(run_dir, server, password_env="CPO_TEST_SMTP_PASSWORD"):
    return cpo("send", run_dir, "--smtp-host", "127.0.0.1", "--smtp-port", server.port,
               "--starttls", "--user", USER, "--password-env", password_env,
               "--max-retries", "0")  # fmt: skip


def test_starttls_and_login_with_the_password_from_the_environment(
    run_dir, tls_server, monkeypatch
):
    monkeypatch.setenv("CPO_TEST_SMTP_PASSWORD", PASSWORD)
    result = starttls_send(run_dir, tls_server)
    assert result.exit_code == 0, result.output
    assert len(tls_server.handler.messages) > 0
    assert PASSWORD not in result.output


def test_a_refused_login_is_one_clear_error(run_dir, tls_server, monkeypatch):
    monkeypatch.setenv("CPO_TEST_SMTP_PASSWORD", "wrong")
    result = starttls_send(run_dir, tls_server)
    assert result.exit_code == 1
    assert f"refused the login of user '{USER}'" in result.output and "fix:" in result.output
    assert tls_server.handler.messages == []
    assert "wrong" not in result.output


def test_without_starttls_the_server_refuses_and_nothing_is_sent(run_dir, tls_server):
    result = cpo("send", run_dir, "--smtp-host", "127.0.0.1", "--smtp-port", tls_server.port,
                 "--max-retries", "0")  # fmt: skip
    assert result.exit_code == 1 and "fix:" in result.output
    assert tls_server.handler.messages == []


def test_an_unset_password_variable_is_named(run_dir, tls_server, monkeypatch):
    monkeypatch.delenv("CPO_TEST_UNSET_PASSWORD", raising=False)
    result = starttls_send(run_dir, tls_server, password_env="CPO_TEST_UNSET_PASSWORD")
    assert result.exit_code == 1
    assert "CPO_TEST_UNSET_PASSWORD" in result.output and "not set" in result.output
