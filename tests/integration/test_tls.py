"""TLS: the compressor serves TLS, the decoder mutual TLS and fetches from the compressor over
TLS (--compressor-tls/--compressor-ca/--compressor-server-name). Certificates are made with the
openssl CLI for the name ctxmem.test only, so both clients must use the server-name override."""

import json
import os
import shutil
import socket
import ssl
import subprocess
import unittest

import harness
from harness import SMALL_CONFIG, ClusterTestCase, grpc

NAME = "ctxmem.test"


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_pki(d):
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=ctxmem-test-ca",
            "-keyout", "ca.key", "-out", "ca.pem", cwd=d)
    with open(os.path.join(d, "san.cnf"), "w") as f:
        f.write(f"subjectAltName=DNS:{NAME}\n")
    for who in ("server", "client"):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={NAME if who == 'server' else 'client'}",
                "-keyout", f"{who}.key", "-out", f"{who}.csr", cwd=d)
        extra = ["-extfile", "san.cnf"] if who == "server" else []
        openssl("x509", "-req", "-in", f"{who}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                "-CAcreateserial", "-days", "2", "-out", f"{who}.pem", *extra, cwd=d)


def read(d, name):
    with open(os.path.join(d, name), "rb") as f:
        return f.read()


@unittest.skipIf(shutil.which("openssl") is None, "openssl CLI not installed")
class TlsTest(ClusterTestCase):
    @classmethod
    def setUpClass(cls):
        c = cls.make_cluster("tls")
        d = cls.pki = c.path("pki")
        os.makedirs(d)
        make_pki(d)
        p = lambda n: os.path.join(d, n)
        cls.ca, cls.ccert, cls.ckey = read(d, "ca.pem"), read(d, "client.pem"), read(d, "client.key")
        server_only = grpc.ssl_channel_credentials(root_certificates=cls.ca)
        mutual = grpc.ssl_channel_credentials(root_certificates=cls.ca, private_key=cls.ckey,
                                              certificate_chain=cls.ccert)
        cls.comp = c.start_compressor(extra=["--tls-cert", p("server.pem"), "--tls-key", p("server.key")],
                                      credentials=server_only, server_name=NAME)
        cls.dec = c.start_decoder(
            [cls.comp], credentials=mutual, server_name=NAME,
            extra=["--tls-cert", p("server.pem"), "--tls-key", p("server.key"),
                   "--tls-client-ca", p("ca.pem"), "--compressor-tls", "--compressor-ca", p("ca.pem"),
                   "--compressor-server-name", NAME, "--http-listen", "127.0.0.1:0"])

    def client(self, **kw):
        opts = dict(tls=True, root_certificates=self.ca, server_name=NAME, timeout=120)
        opts.update(kw)
        return harness.Client(self.comp.grpc_addr, self.dec.grpc_addr, **opts)

    def test_compress_and_generate_over_tls_and_mtls(self):
        with self.client(decoder_options=dict(private_key=self.ckey,
                                              certificate_chain=self.ccert)) as c:
            r = c.compress(harness.book_text(300, 700), SMALL_CONFIG)
            s = c.generate(r.memory_id, "Then", max_tokens=3)
            s.text()  # the decoder fetched the blob from the compressor over TLS
            self.assertFalse(s.done.timings.cache_hit)
            self.assertEqual(s.done.usage.memory_entries, 68)

    def test_plaintext_client_is_refused(self):
        with harness.Client(self.comp.grpc_addr, self.dec.grpc_addr, timeout=10) as c:
            self.assertStatus(grpc.StatusCode.UNAVAILABLE, lambda: list(c.ls()))
            self.assertStatus(grpc.StatusCode.UNAVAILABLE,
                              lambda: c.generate([], "Hi", max_tokens=1).text())

    def test_decoder_requires_client_certificate(self):
        with self.client(timeout=10) as c:
            self.assertStatus(grpc.StatusCode.UNAVAILABLE,
                              lambda: c.generate([], "Hi", max_tokens=1).text())

    def https_get(self, path, cert=True):
        """GET over TLS to the decoder's HTTP front (--http-listen), checking its certificate
        for NAME; with `cert`, the client certificate the mTLS port requires."""
        ctx = ssl.create_default_context(cafile=os.path.join(self.pki, "ca.pem"))
        if cert:
            ctx.load_cert_chain(os.path.join(self.pki, "client.pem"),
                                os.path.join(self.pki, "client.key"))
        host, port = self.dec.http_addr.rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=30) as raw:
            with ctx.wrap_socket(raw, server_hostname=NAME) as s:
                s.sendall(f"GET {path} HTTP/1.1\r\nHost: {NAME}\r\nConnection: close\r\n\r\n"
                          .encode())
                data = b""
                while chunk := s.recv(65536):
                    data += chunk
        if not data:
            raise ConnectionError("the server closed the connection")
        head, _, body = data.partition(b"\r\n\r\n")
        return int(head.split()[1]), json.loads(body)

    def test_http_front_is_https_with_the_same_mtls(self):
        status, body = self.https_get("/v1/models")
        self.assertEqual(status, 200)
        self.assertEqual(body["object"], "list")
        with self.assertRaises((ssl.SSLError, ConnectionError, ValueError)):
            self.https_get("/v1/models", cert=False)  # no client certificate: no connection

    def test_wrong_ca_is_refused(self):
        other = self.cluster.path("other")
        os.makedirs(other)
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=x",
                "-keyout", "x.key", "-out", "x.pem", cwd=other)
        with self.client(root_certificates=read(other, "x.pem"), timeout=10) as c:
            self.assertStatus(grpc.StatusCode.UNAVAILABLE, lambda: list(c.ls()))


if __name__ == "__main__":
    unittest.main()
