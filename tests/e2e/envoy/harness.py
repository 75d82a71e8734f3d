"""Pieces for running the tokengate filter in real Envoy on loopback: a JWKS server, an origin,
test certificates, RS256 tokens signed with the fixed TEST keys (via the openssl CLI, so no
tokengate code signs anything), Envoy bootstrap generation and process control.

Standard library + openssl + Envoy only. Everything binds to 127.0.0.1.
"""

import base64
import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
KEYS = ROOT / "tests" / "vectors" / "keys"
ENVOY = Path(os.environ.get("ENVOY_BIN", ROOT / ".venv" / "bin" / "envoy"))
FILTER = Path(os.environ.get("TOKENGATE_PROXY_WASM", ROOT / "target" / "tokengate_proxy.opt.wasm"))

ISS = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_TEST0pool"
POOL_PATH = "/eu-west-1_TEST0pool/.well-known/jwks.json"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


_PORTS_GIVEN = set()


def free_port() -> int:
    """A loopback port that is free now and was not handed out before in this process.

    The kernel may offer a port again as soon as the probing socket closes, so a config that
    asks for dozens of ports (the vectors' listeners) could get one twice and Envoy would refuse
    the duplicate listener address."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _PORTS_GIVEN:
            _PORTS_GIVEN.add(port)
            return port


def openssl_sign(key: Path, header: dict, claims: dict) -> tuple:
    """The JWS signing input of `header` and `claims`, and `openssl dgst -sha256 -sign` of it."""
    signing_input = (b64url(json.dumps(header, separators=(",", ":")).encode()) + "." +
                     b64url(json.dumps(claims, separators=(",", ":")).encode()))
    sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", str(key)],
                         input=signing_input.encode(), check=True, capture_output=True).stdout
    return signing_input, sig


class TestKey:
    """A fixed TEST RSA key from tests/vectors/keys, with a kid of our choosing."""

    def __init__(self, pem: str, kid: str):
        self.path = KEYS / pem
        self.kid = kid
        out = subprocess.run(["openssl", "rsa", "-in", str(self.path), "-noout", "-modulus"],
                             check=True, capture_output=True, text=True).stdout
        self.n = bytes.fromhex(out.strip().split("=", 1)[1])

    def jwk(self) -> dict:
        return {"kty": "RSA", "kid": self.kid, "alg": "RS256", "use": "sig",
                "n": b64url(self.n), "e": b64url((65537).to_bytes(3, "big"))}

    def sign(self, claims: dict) -> str:
        signing_input, sig = openssl_sign(self.path, {"kid": self.kid, "alg": "RS256"}, claims)
        return signing_input + "." + b64url(sig)


class EcTestKey:
    """A fixed TEST P-256 key from tests/vectors/keys (ES256), signed with openssl."""

    def __init__(self, pem: str, kid: str):
        self.path = KEYS / pem
        self.kid = kid
        der = subprocess.run(["openssl", "pkey", "-in", str(self.path), "-pubout", "-outform", "DER"],
                             check=True, capture_output=True).stdout
        self.x, self.y = der[-64:-32], der[-32:]  # the uncompressed point ends the SPKI

    def jwk(self) -> dict:
        return {"kty": "EC", "crv": "P-256", "kid": self.kid, "alg": "ES256", "use": "sig",
                "x": b64url(self.x), "y": b64url(self.y)}

    def sign(self, claims: dict) -> str:
        signing_input, der = openssl_sign(self.path, {"kid": self.kid, "alg": "ES256"}, claims)
        # ECDSA-Sig-Value (DER) to JWS r || s (RFC 7518 §3.4).
        assert der[0] == 0x30 and der[2] == 0x02, der.hex()
        r_len = der[3]
        r = der[4:4 + r_len]
        s_len = der[5 + r_len]
        s = der[6 + r_len:6 + r_len + s_len]
        fixed = lambda v: v.lstrip(b"\0").rjust(32, b"\0")  # noqa: E731
        return signing_input + "." + b64url(fixed(r) + fixed(s))


def claims(client_id: str, scope: str, **extra) -> dict:
    now = int(time.time())
    c = {"sub": client_id, "client_id": client_id, "token_use": "access", "scope": scope,
         "iss": ISS, "iat": now - 5, "exp": now + 3600, "jti": f"{client_id}-{scope}-{time.monotonic_ns()}"}
    c.update(extra)
    return c


class _Server:
    def __init__(self, handler_cls):
        self.port = free_port()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", self.port), handler_cls)
        self.httpd.daemon_threads = True
        self.httpd.owner = self
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class JwksServer(_Server):
    """Serves `self.doc` at any path; counts fetches; can delay or fail."""

    def __init__(self, doc: dict):
        self.doc = doc
        self.fetches = 0
        self.delay_s = 0.0
        self.first_delay_s = None  # when set, the first fetch only waits this long (later ones delay_s)
        self.status = 200
        self.lock = threading.Lock()

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                srv = self.server.owner
                with srv.lock:
                    srv.fetches += 1
                    body = json.dumps(srv.doc).encode()
                    delay, status = srv.delay_s, srv.status
                    if srv.first_delay_s is not None and srv.fetches == 1:
                        delay = srv.first_delay_s
                if delay:
                    time.sleep(delay)
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("cache-control", "max-age=300")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        super().__init__(H)


class SilentServer:
    """Accepts TCP connections on 127.0.0.1 and never answers (a JWKS endpoint that hangs)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.stopped = threading.Event()
        self.conns = []
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        while not self.stopped.is_set():
            try:
                conn, _ = self.sock.accept()
                self.accepted += 1
                self.conns.append(conn)
            except OSError:
                continue

    def close(self):
        self.stopped.set()
        for c in self.conns:
            c.close()
        self.sock.close()


class Origin(_Server):
    """Answers 200 to everything and records what reached it."""

    def __init__(self):
        self.seen = []
        self.lock = threading.Lock()

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _any(self):
                srv = self.server.owner
                length = int(self.headers.get("content-length") or 0)
                if length:
                    self.rfile.read(length)
                with srv.lock:
                    srv.seen.append({"method": self.command, "path": self.path,
                                     "headers": {k.lower(): v for k, v in self.headers.items()}})
                body = b'{"origin":"ok"}'
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_DELETE = _any

        super().__init__(H)

    def find(self, marker: str):
        with self.lock:
            return [r for r in self.seen if marker in r["path"]]


def make_ca(d: Path, name: str, cn: str) -> dict:
    """A P-256 CA valid for two days, in `d`: {"cert", "key"} paths."""
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.pem", "-days", "2",
                    "-subj", f"/CN={cn}"], check=True, capture_output=True, cwd=d)
    return {"cert": str(d / f"{name}.pem"), "key": str(d / f"{name}.key")}


def issue_cert(d: Path, ca: dict, name: str, subject: str, ext: str) -> dict:
    """A P-256 certificate signed by `ca`, in `d`. `subject` in openssl's `/O=…/CN=…` form (RDNs
    in certificate order), `ext` extension lines (e.g. "subjectAltName=URI:spiffe://…").
    Returns the cert and key paths, the DER, its SHA-256 as lower-case hex (Envoy's
    `sha256_peer_certificate_digest`) and as base64url (RFC 8705 `x5t#S256`)."""
    def run(*args):
        subprocess.run(args, check=True, capture_output=True, cwd=d)

    run("openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", subject)
    (d / f"{name}.ext").write_text(ext + "\n")
    run("openssl", "x509", "-req", "-in", f"{name}.csr", "-CA", ca["cert"], "-CAkey", ca["key"],
        "-CAcreateserial", "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext")
    der = subprocess.run(["openssl", "x509", "-in", f"{name}.pem", "-outform", "DER"],
                         check=True, capture_output=True, cwd=d).stdout
    digest = hashlib.sha256(der).digest()
    return {"cert": str(d / f"{name}.pem"), "key": str(d / f"{name}.key"), "der": der,
            "sha256": digest.hex(), "x5t": b64url(digest)}


def make_certs(d: Path) -> dict:
    """CA, a server certificate for 127.0.0.1, and client certificates A and B. Returns paths and
    the RFC 8705 thumbprints (base64url SHA-256 of the DER) of the client certificates."""
    ca = make_ca(d, "ca", "tokengate e2e CA")
    out = {"ca": ca["cert"]}
    for name, cn, ext in [("server", "localhost", "subjectAltName=IP:127.0.0.1,DNS:localhost"),
                          ("client-a", "client-a", "extendedKeyUsage=clientAuth"),
                          ("client-b", "client-b", "extendedKeyUsage=clientAuth")]:
        c = issue_cert(d, ca, name, f"/CN={cn}", ext)
        out[name] = {"cert": c["cert"], "key": c["key"], "x5t": c["x5t"]}
    return out


def wasm_filter(plugin_config: dict, vm_id: str = "tokengate", **envoy_plugin_options) -> dict:
    """`envoy_plugin_options`: more fields of Envoy's PluginConfig (e.g.
    allow_on_headers_stop_iteration=True)."""
    return {
        "name": "envoy.filters.http.wasm",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
            "config": dict({
                "name": "tokengate",
                "root_id": "tokengate",
                "configuration": {"@type": "type.googleapis.com/google.protobuf.StringValue",
                                  "value": json.dumps(plugin_config)},
                "vm_config": {"vm_id": vm_id, "runtime": "envoy.wasm.runtime.v8",
                              "code": {"local": {"filename": str(FILTER)}}},
            }, **envoy_plugin_options),
        },
    }


def router() -> dict:
    return {"name": "envoy.filters.http.router",
            "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}


# The HttpConnectionManager path settings crates/tokengate-proxy/README.md recommends.
README_PATH_SETTINGS = {"normalize_path": True, "merge_slashes": True,
                        "path_with_escaped_slashes_action": "UNESCAPE_AND_REDIRECT"}


def listener(name: str, port: int, http_filters: list, route: dict, tls: dict = None,
             path_settings: dict = None, match: dict = None, access_log: list = None) -> dict:
    """`path_settings`: the HCM path options (default: the README's; `{}` leaves Envoy's
    defaults). `match`: the route match (default: prefix "/"). `tls`: {"cert", "key", "ca"}
    for a TLS listener that asks for a client certificate signed by "ca"; with "optional": True
    a client may also connect without one (a certificate it does present must still verify).
    `access_log`: the HCM's access loggers."""
    hcm = {
        "name": "envoy.filters.network.http_connection_manager",
        "typed_config": dict({
            "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
            "stat_prefix": name,
            "route_config": {"virtual_hosts": [{"name": "all", "domains": ["*"],
                                                "routes": [dict({"match": match or {"prefix": "/"}}, **route)]}]},
            "http_filters": http_filters + [router()],
        }, **(README_PATH_SETTINGS if path_settings is None else path_settings)),
    }
    if access_log:
        hcm["typed_config"]["access_log"] = access_log
    chain = {"filters": [hcm]}
    if tls:
        chain["transport_socket"] = {
            "name": "envoy.transport_sockets.tls",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
                "require_client_certificate": not tls.get("optional", False),
                "common_tls_context": {
                    "tls_certificates": [{"certificate_chain": {"filename": tls["cert"]},
                                          "private_key": {"filename": tls["key"]}}],
                    "validation_context": {"trusted_ca": {"filename": tls["ca"]}},
                },
            },
        }
    return {"name": name,
            "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
            "filter_chains": [chain]}


def readme_access_log() -> dict:
    """The access log of crates/tokengate-proxy/README.md's envoy.yaml (JSON lines on stdout, the
    filter's audit record in them), read from the README itself: the configuration people copy is
    the one tested. Its lines land in the Envoy process's output (`Envoy.access_log_lines`)."""
    readme = (ROOT / "crates" / "tokengate-proxy" / "README.md").read_text()
    block = next(b for b in readme.split("```") if "%FILTER_STATE(wasm.tokengate:PLAIN)%" in b
                 and "json_format:" in b)
    name = re.search(r"- name: (envoy\.access_loggers\.\w+)", block).group(1)
    kind = re.search(r'"@type": (type\.googleapis\.com/envoy\.extensions\.access_loggers\.\S+)', block).group(1)
    fields, indent = {}, None
    for line in block.split("json_format:", 1)[1].splitlines()[1:]:
        if not line.strip() or line.strip().startswith("#"):
            continue
        depth = len(line) - len(line.lstrip())
        if indent is None:
            indent = depth
        if depth != indent:
            break
        key, _, value = line.strip().partition(": ")
        fields[key] = json.loads(re.match(r'"(?:[^"\\]|\\.)*"', value).group(0))
    return {"name": name, "typed_config": {"@type": kind, "log_format": {"json_format": fields}}}


def cluster(name: str, port: int) -> dict:
    return {"name": name, "type": "STATIC", "connect_timeout": "1s",
            "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": [
                {"endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": port}}}}]}]}}


def bootstrap(admin_port: int, listeners: list, clusters: list) -> dict:
    return {
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": admin_port}}},
        "static_resources": {"listeners": listeners, "clusters": clusters},
        # Makes `code` a tag of the per-code counters (see the filter README).
        "stats_config": {"stats_tags": [
            {"tag_name": "code", "regex": r"^wasmcustom\.tokengate_denied_total(\.code\.([a-z_]+))$"},
            {"tag_name": "result", "regex": r"^wasmcustom\.tokengate_jwks_refresh_total(\.result\.([a-z_]+))$"},
            {"tag_name": "result", "regex": r"^wasmcustom\.tokengate_feed_refresh_total(\.result\.([a-z_]+))$"},
            {"tag_name": "crypto", "regex": r"^wasmcustom\.tokengate_signature_checks_total(\.crypto\.([a-z_]+))$"},
        ]},
    }


class Envoy:
    """An Envoy process on a generated bootstrap. Use as a context manager."""

    def __init__(self, workdir: Path, config: dict, admin_port: int, concurrency: int = 2,
                 name: str = "envoy", log_level: str = "warning", cpus: set = None):
        self.workdir, self.config, self.admin_port = workdir, config, admin_port
        # CPUs every Envoy thread is bound to (benchmarks: away from the load generator's).
        self.cpus = cpus
        self.concurrency, self.name, self.log_level = concurrency, name, log_level
        self.log_path = workdir / f"{name}.log"
        self.proc = None

    def start(self, wait_s: float = 30.0, expect_ready: bool = True):
        cfg = self.workdir / f"{self.name}.yaml"
        cfg.write_text(json.dumps(self.config, indent=1))
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [str(ENVOY), "-c", str(cfg), "--concurrency", str(self.concurrency),
             "--disable-hot-restart", "-l", self.log_level, "--component-log-level", "wasm:info",
             # Access log files are written out every 200 ms (Envoy's default: 10 s).
             "--file-flush-interval-msec", "200",
             "--log-format", "[%l][%n] %v"],
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
            preexec_fn=(lambda: os.sched_setaffinity(0, self.cpus)) if self.cpus else None)
        if not expect_ready:
            return self
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.log_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.admin_port}/ready", timeout=1) as r:
                    if r.status == 200:
                        return self
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} not ready after {wait_s}s:\n{self.log_text()[-3000:]}")

    def wait_exit(self, timeout_s: float):
        try:
            return self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return None

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def access_log_lines(self) -> list:
        """The access log lines Envoy wrote to its stdout: JSON objects (its own log lines start
        with '[')."""
        return [line for line in self.log_text().splitlines() if line.startswith("{")]

    def stats(self) -> dict:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.admin_port}/stats", timeout=5) as r:
            out = {}
            for line in r.read().decode().splitlines():
                k, _, v = line.partition(": ")
                out[k] = v
            return out

    def stop(self):
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        if getattr(self, "log", None):
            self.log.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def curl(url: str, *args: str, timeout_s: int = 10) -> dict:
    """One request with curl; status, lower-cased headers and body."""
    out = subprocess.run(
        ["curl", "-sS", "--max-time", str(timeout_s), "-o", "-", "-D", "/dev/stderr",
         "-w", "", *args, url], capture_output=True)
    headers, status = {}, 0
    for line in out.stderr.decode(errors="replace").splitlines():
        if line.startswith("HTTP/"):
            parts = line.split()
            status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
            headers = {}
        elif ":" in line:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
    body = out.stdout.decode(errors="replace")
    try:
        doc = json.loads(body)
    except ValueError:
        doc = None
    return {"status": status, "headers": headers, "body": body, "json": doc, "rc": out.returncode}


# --- Raw HTTP/1.1 on sockets: the request target and header bytes go out exactly as given, and the
# origin keeps every byte it was sent (so "nothing reached the origin" covers bodies too).

def read_http_message(buf: bytes, is_response: bool, head_request: bool = False):
    """Parses one HTTP/1.1 message at the start of `buf`. Returns (message, rest) or None when
    `buf` does not hold a whole message yet. A response without a length is read to EOF by the
    caller (it is not complete here)."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None
    head, rest = buf[:end].decode("latin-1"), buf[end + 4:]
    lines = head.split("\r\n")
    start, fields = lines[0], []
    for line in lines[1:]:
        k, _, v = line.partition(":")
        fields.append((k.strip().lower(), v.strip(" \t")))
    names = {k for k, _ in fields}
    te = ",".join(v for k, v in fields if k == "transfer-encoding").lower()
    body, trailers = b"", []
    if is_response and (head_request or start.split(" ")[1:2] in (["204"], ["304"])):
        pass
    elif "chunked" in te:
        pos = 0
        while True:
            eol = rest.find(b"\r\n", pos)
            if eol < 0:
                return None
            size = int(rest[pos:eol].split(b";")[0].strip() or b"0", 16)
            pos = eol + 2
            if size == 0:
                tend = rest.find(b"\r\n\r\n", pos - 2)
                if tend < 0:
                    return None
                for line in rest[pos:tend].decode("latin-1").split("\r\n"):
                    if line:
                        k, _, v = line.partition(":")
                        trailers.append((k.strip().lower(), v.strip()))
                rest = rest[tend + 4:]
                break
            if len(rest) < pos + size + 2:
                return None
            body += rest[pos:pos + size]
            pos += size + 2
    elif "content-length" in names:
        n = int(next(v for k, v in fields if k == "content-length"))
        if len(rest) < n:
            return None
        body, rest = rest[:n], rest[n:]
    elif is_response:
        return None  # delimited by EOF
    return {"start": start, "fields": fields, "body": body, "trailers": trailers}, rest


class RawOrigin:
    """An HTTP/1.1 origin on a raw socket. Answers 200 to every request it can parse and records
    each one (method, target, header fields, body) as well as every byte received on any
    connection. Daemon threads; close() stops it."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.lock = threading.Lock()
        self.raw = bytearray()
        self.requests = []
        self.connections = 0
        self.stopped = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.stopped.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            with self.lock:
                self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        conn.settimeout(0.2)
        buf = b""
        with conn:
            while not self.stopped.is_set():
                try:
                    data = conn.recv(65536)
                except socket.timeout:
                    continue
                except OSError:
                    return
                if not data:
                    return
                with self.lock:
                    self.raw += data
                buf += data
                while True:
                    parsed = read_http_message(buf, is_response=False)
                    if parsed is None:
                        break
                    msg, buf = parsed
                    method, target = (msg["start"].split(" ") + ["", ""])[:2]
                    headers = {}
                    for k, v in msg["fields"]:
                        headers.setdefault(k, []).append(v)
                    rec = {"method": method, "target": target, "headers": headers, "body": msg["body"],
                           "trailers": msg["trailers"]}
                    with self.lock:
                        self.requests.append(rec)
                    out = b'{"origin":"ok"}'
                    resp = (b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: "
                            + str(len(out)).encode() + b"\r\n\r\n" + (b"" if method == "HEAD" else out))
                    try:
                        conn.sendall(resp)
                    except OSError:
                        return

    def tagged(self, header: str, value: str) -> list:
        """The requests that carried `header: value`."""
        with self.lock:
            return [r for r in self.requests if value in r["headers"].get(header, [])]

    def saw_bytes(self, needle: bytes) -> bool:
        with self.lock:
            return needle in self.raw

    def close(self):
        self.stopped.set()
        self.sock.close()


def raw_request(port: int, method: str, target: str, headers: list, body: bytes = b"",
                timeout_s: float = 5.0) -> dict:
    """One HTTP/1.1 request on its own connection, written byte for byte (`method`, `target` and
    header values are sent as given, UTF-8 for anything outside ASCII). Returns status (0 when the
    connection closed without an answer), lower-cased header fields, body and parsed JSON."""
    lines = [f"{method} {target} HTTP/1.1", f"host: 127.0.0.1:{port}"]
    lines += [f"{k}: {v}" for k, v in headers]
    if body:
        lines.append(f"content-length: {len(body)}")
    lines.append("connection: close")
    data = ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8") + body
    buf = b""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as s:
        s.sendall(data)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                break
            if not chunk:
                break
            buf += chunk
            parsed = read_http_message(buf, is_response=True, head_request=(method == "HEAD"))
            if parsed is not None:
                break
    return parse_response(buf, head_request=(method == "HEAD"))


def parse_response(buf: bytes, head_request: bool = False) -> dict:
    parsed = read_http_message(buf, is_response=True, head_request=head_request)
    if parsed is None:  # read to EOF, or nothing at all
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            return {"status": 0, "headers": {}, "body": buf.decode("latin-1"), "json": None}
        lines = buf[:end].decode("latin-1").split("\r\n")
        msg = {"start": lines[0], "body": buf[end + 4:],
               "fields": [(k.strip().lower(), v.strip(" \t")) for k, _, v in (l.partition(":") for l in lines[1:])]}
    else:
        msg = parsed[0]
    parts = msg["start"].split(" ")
    status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
    headers = {}
    for k, v in msg["fields"]:
        headers[k] = v if k not in headers else headers[k] + ", " + v
    body = msg["body"].decode("utf-8", errors="replace")
    try:
        doc = json.loads(body)
    except ValueError:
        doc = None
    return {"status": status, "headers": headers, "body": body, "json": doc}


def tracking(check):
    """`check` that also remembers the names of the checks that failed: (check, failed)."""
    failed = []

    def tracked(name, ok, detail=""):
        check(name, ok, detail)
        if not ok:
            failed.append(name)

    return tracked, failed
