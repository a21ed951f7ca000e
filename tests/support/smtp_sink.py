"""A real SMTP server on 127.0.0.1 that keeps what it is sent, for the email channel's tests.

The channel talks SMTP through ``aiosmtplib``; a mock of that library would only check that
we call it the way we think it works. This is ``aiosmtpd`` (a complete SMTP server, in its
own thread and event loop) on a local port, so the bytes on the wire, the envelope, AUTH,
STARTTLS or implicit TLS and the server's reply codes are all the real thing:

* every message accepted at DATA is kept as a :class:`Received` (envelope, raw bytes and
  the parsed ``EmailMessage``), and :meth:`SmtpSink.wait_for` blocks until enough came;
* ``username``/``password`` make the server require AUTH (PLAIN or LOGIN) before MAIL;
* ``tls="starttls"`` or ``"implicit"`` serve a certificate made at start for ``127.0.0.1``
  and ``localhost``, which a client trusts through :attr:`SmtpSink.cert_path`;
* ``refuse`` answers RCPT for given addresses with a given reply (a 550 for a user that
  does not exist), and ``fail_data`` answers the next DATAs with queued replies (a 451
  once, then success);
* an SMTP server that is down is a port nothing listens on yet: reserve one with
  ``free_port()``, point the channel at it, and ``SmtpSink(port=p).start()`` later. stop()
  closes the listener and every open connection, so the port can be started on again.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import email.policy
import ipaddress
import shutil
import socket
import ssl
import tempfile
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any, Literal, cast

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

#: The name the server gives itself in its greeting. Set, because aiosmtpd otherwise asks
#: ``socket.getfqdn()``, which can wait on DNS.
SERVER_NAME = "smtp-sink.test"

TlsMode = Literal[None, "starttls", "implicit"]


@dataclass(frozen=True)
class Received:
    """One message the sink accepted: its envelope, the bytes sent after DATA, parsed."""

    mail_from: str
    rcpt_tos: list[str]
    raw: bytes
    message: EmailMessage  # parsed from ``raw``, line endings as "\n"
    received_at: float  # time.monotonic() when DATA completed

    def header(self, name: str) -> str | None:
        value = self.message.get(name)
        return None if value is None else str(value)

    def text(self) -> str:
        """The ``text/plain`` body (of a multipart/alternative, or of a plain message)."""
        return self._body("plain")

    def html(self) -> str:
        """The ``text/html`` body."""
        return self._body("html")

    def _body(self, subtype: str) -> str:
        part = self.message.get_body(preferencelist=(subtype,))
        if part is None:
            kinds = [p.get_content_type() for p in self.message.walk()]
            raise AssertionError(f"no text/{subtype} part in the message; it has {kinds}")
        return cast(str, cast(EmailMessage, part).get_content())


@dataclass
class SmtpSink:
    """An SMTP server on ``host:port`` that records what it accepts (see the module docstring)."""

    host: str = "127.0.0.1"
    port: int = 0  # 0: any free port, known once started
    #: Set both to require AUTH (PLAIN or LOGIN) with these credentials before MAIL.
    username: str | None = None
    password: str | None = None
    tls: TlsMode = None
    #: RCPT replies by recipient address (compared case-insensitively), e.g.
    #: ``{"nobody@acme.com": (550, "5.1.1 No such user")}``.
    refuse: dict[str, tuple[int, str]] = field(default_factory=dict)
    #: Replies to the next DATAs, one popped per DATA, e.g. ``deque([(451, "4.3.0 Try later")])``.
    fail_data: deque[tuple[int, str]] = field(default_factory=deque)
    messages: list[Received] = field(default_factory=list)
    #: The login of every successful AUTH, in order.
    authenticated_as: list[str] = field(default_factory=list)
    _controller: _Controller | None = None
    _certs: Path | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _arrived: threading.Condition = field(init=False)

    def __post_init__(self) -> None:
        self._arrived = threading.Condition(self._lock)

    # -- running ------------------------------------------------------------------------

    @property
    def cert_path(self) -> str:
        """The PEM certificate the server presents (with ``tls`` set): what a client trusts."""
        assert self._certs is not None, "the sink serves no TLS (or is not started)"
        return str(self._certs / "cert.pem")

    def client_tls_context(self) -> ssl.SSLContext:
        """A client context that trusts this sink's certificate and checks the host name."""
        return ssl.create_default_context(cafile=self.cert_path)

    def start(self) -> SmtpSink:
        assert self._controller is None, "already started"
        # Bound here rather than picked with free_port() and bound later: no other process
        # can take the port in between. SO_REUSEADDR so a port just stopped on (its closed
        # connections in TIME_WAIT) can be bound again at once, as asyncio does too.
        # IPPROTO_TCP named, or asyncio skips TCP_NODELAY on the accepted connections, and
        # aiosmtpd's multi-line EHLO reply (one write per line) then waits out the client's
        # delayed ACK: 40 ms per message, all of it the sink's.
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            listener.bind((self.host, self.port))
        except OSError:
            listener.close()
            raise
        self.port = listener.getsockname()[1]

        kwargs: dict[str, Any] = {}
        if self.tls is not None:
            self._certs = Path(tempfile.mkdtemp(prefix="smtp-sink-"))
            context = _server_context(self._certs)
            if self.tls == "starttls":
                kwargs.update(tls_context=context, require_starttls=True)
            else:
                kwargs.update(ssl_context=context)
        if self.username is not None:
            # Offered before STARTTLS only where there is no STARTTLS to wait for. (aiosmtpd
            # does not count implicit TLS as TLS for this check, hence False there too.)
            kwargs.update(auth_require_tls=self.tls == "starttls", authenticator=self._auth)
        self._controller = _Controller(_Handler(self), listener, **kwargs)
        try:
            self._controller.start()
        except BaseException:
            self._controller = None
            listener.close()
            raise
        return self

    def stop(self) -> None:
        controller, self._controller = self._controller, None
        if controller is not None:
            controller.shut()
        if self._certs is not None:
            shutil.rmtree(self._certs, ignore_errors=True)
            self._certs = None

    def __enter__(self) -> SmtpSink:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- looking at what came -----------------------------------------------------------

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        """Block until at least ``count`` messages were accepted; all of them so far.

        Blocks the calling thread: from a test whose code under test sends on the same event
        loop, use :meth:`wait_for_async`.
        """
        with self._arrived:
            if not self._arrived.wait_for(lambda: len(self.messages) >= count, timeout):
                got = [(m.mail_from, m.rcpt_tos, m.header("Subject")) for m in self.messages]
                raise AssertionError(
                    f"expected {count} message(s) within {timeout}s, got {len(got)}: {got}"
                )
            return list(self.messages)

    async def wait_for_async(self, count: int, timeout: float = 10.0) -> list[Received]:
        """:meth:`wait_for` off the event loop, so senders on that loop go on meanwhile."""
        return await asyncio.to_thread(self.wait_for, count, timeout)

    # -- the server's side --------------------------------------------------------------

    def _auth(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = (
            isinstance(data, LoginPassword)
            and data.login.decode() == self.username
            and data.password.decode() == self.password
        )
        if ok:
            with self._lock:
                self.authenticated_as.append(data.login.decode())
        # handled=False: aiosmtpd then answers 535 itself; True would leave the client waiting.
        return AuthResult(success=ok, handled=False, auth_data=data if ok else None)

    def _refusal(self, address: str) -> tuple[int, str] | None:
        with self._lock:
            for refused, reply in self.refuse.items():
                if refused.lower() == address.lower():
                    return reply
        return None

    def _accept(self, envelope: Envelope) -> str:
        with self._lock:
            fault = self.fail_data.popleft() if self.fail_data else None
        if fault is not None:
            return f"{fault[0]} {fault[1]}"
        raw = envelope.original_content or b""
        received = Received(
            mail_from=envelope.mail_from or "",
            rcpt_tos=list(envelope.rcpt_tos),
            raw=raw,
            # Parsed with the wire's CRLFs made LFs, as a mail client would show it: parts
            # sent as 7bit or 8bit would otherwise keep "\r\n" in their content.
            message=BytesParser(policy=email.policy.default).parsebytes(
                raw.replace(b"\r\n", b"\n")
            ),
            received_at=time.monotonic(),
        )
        with self._arrived:
            self.messages.append(received)
            self._arrived.notify_all()
        return "250 2.0.0 OK: queued"


class _Handler:
    """aiosmtpd's hooks (run on the server's loop), deciding through the sink."""

    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_MAIL(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        # What aiosmtpd's auth_required=True answers, done here because that flag also warns
        # (in the server's thread) that AUTH without TLS is insecure, which we mean to allow.
        if self.sink.username is not None and not session.authenticated:
            return "530 5.7.0 Authentication required"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        refused = self.sink._refusal(address)
        if refused is not None:
            return f"{refused[0]} {refused[1]}"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        return self.sink._accept(envelope)


class _Controller(Controller):
    """aiosmtpd's threaded controller, on a socket bound in advance, closing its connections.

    aiosmtpd's own stop() closes the listener and stops the loop but leaves accepted
    connections open (until garbage collection); a server going down drops them.
    """

    def __init__(self, handler: _Handler, listener: socket.socket, **smtp: Any) -> None:
        host, port = listener.getsockname()[:2]
        super().__init__(handler, hostname=host, port=port, server_hostname=SERVER_NAME, **smtp)
        self.listener = listener
        self.sessions: set[SMTP] = set()

    def _create_server(self) -> Any:
        return self.loop.create_server(
            self._factory_invoker, sock=self.listener, ssl=self.ssl_context
        )

    def factory(self) -> SMTP:
        smtp = SMTP(self.handler, **self.SMTP_kwargs)
        self.sessions.add(smtp)  # on the server's loop, as is every use of the set
        return smtp

    def shut(self) -> None:
        async def close() -> None:
            if self.server is not None:
                self.server.close()
            for smtp in self.sessions:
                # abort(), not close(): a TLS connection's close() waits on the TLS
                # goodbye, which would not come with the loop stopped.
                if isinstance(smtp.transport, asyncio.WriteTransport):
                    smtp.transport.abort()
            self.sessions.clear()

        with contextlib.suppress(RuntimeError):  # the loop already ended
            asyncio.run_coroutine_threadsafe(close(), self.loop).result(10)
        self.stop()
        self.listener.close()


def _server_context(directory: Path) -> ssl.SSLContext:
    """A server context with a new self-signed certificate for 127.0.0.1 and localhost."""
    key = ec.generate_private_key(ec.SECP256R1())  # quicker to make than RSA, as good here
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        # Its own CA, with the extensions OpenSSL's strict mode (Python 3.13's default) wants
        # of a trust anchor, and fit for a TLS server.
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_path, key_path)
    return context
