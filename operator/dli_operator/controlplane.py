"""A real local Kubernetes control plane (etcd + kube-apiserver) for the demo and the tests.

envtest-style (research/kopf-and-apiserver.md part B4): its own CA, a serving certificate for
127.0.0.1, an admin client certificate in ``system:masters``, RBAC authorization, service-account
signing keys, loopback only, free ports, logs to files. There is no controller-manager or
scheduler: namespaces never finish terminating and pods never run, which the tests account for.

The binaries come from ``hack/build-tools.sh control-plane`` (built from the Go module proxy,
cached by version) or from the folder named by ``DLI_CONTROL_PLANE_BIN``. This module is a
development tool; the operator never imports it.
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import datetime as dt
import ipaddress
import json
import os
import signal
import socket
import ssl
import subprocess
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

BUILD_SCRIPT = Path(__file__).resolve().parents[2] / "hack" / "build-tools.sh"
# envtest waits 20 s per component; a cold apiserver on 2 cores needs longer (bootstrap RBAC).
START_TIMEOUT_SECONDS = 90.0
STOP_TIMEOUT_SECONDS = 20.0
PR_SET_PDEATHSIG = 1
# Popen objects of the processes this interpreter started, so they are reaped, not leaked.
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


@dataclass(frozen=True)
class ControlPlane:
    """A running control plane: where it lives and how to reach it."""

    workdir: Path
    server: str

    @property
    def kubeconfig(self) -> Path:
        return self.workdir / "kubeconfig"

    @property
    def pidfile(self) -> Path:
        return self.workdir / "pids.json"


def find_binaries() -> Path:
    """Return the folder holding ``etcd`` and ``kube-apiserver``, building them if needed."""
    if explicit := os.environ.get("DLI_CONTROL_PLANE_BIN"):
        return Path(explicit)
    if not BUILD_SCRIPT.exists():
        raise RuntimeError("set DLI_CONTROL_PLANE_BIN to a folder with etcd and kube-apiserver")
    return build_tool("control-plane")


def build_tool(name: str) -> Path:
    """The folder holding Go tool ``name`` (a ``hack/tools/NAME.sh`` recipe), built if needed."""
    out = subprocess.run([str(BUILD_SCRIPT), name], check=True, capture_output=True, text=True)
    return Path(out.stdout.strip().splitlines()[-1])


def start(workdir: Path, *, detached: bool = False, bin_dir: Path | None = None) -> ControlPlane:
    """Start etcd and kube-apiserver under ``workdir`` and wait until ``/readyz`` answers ok.

    ``detached`` processes outlive the caller (``make cluster``); otherwise they die with it.
    """
    bin_dir = bin_dir or find_binaries()
    workdir.mkdir(parents=True, exist_ok=True)
    pki = _write_pki(workdir / "pki")
    etcd_port, peer_port, api_port = _ports(workdir)
    launch = _launcher(workdir, detached)
    pids = {"etcd": launch("etcd", _etcd_args(bin_dir, workdir, etcd_port, peer_port))}
    try:
        args = _apiserver_args(bin_dir, pki, etcd_port, api_port)
        pids["kube-apiserver"] = launch("kube-apiserver", args)
        plane = ControlPlane(workdir=workdir, server=f"https://127.0.0.1:{api_port}")
        plane.pidfile.write_text(json.dumps(pids))
        _write_kubeconfig(plane, pki)
        _wait_ready(plane, pki, pids)
    except BaseException:
        _kill_all(pids)
        raise
    return plane


def stop(workdir: Path) -> None:
    """Stop a control plane started in ``workdir`` (apiserver first), leaving no processes."""
    pidfile = workdir / "pids.json"
    if not pidfile.exists():
        return
    pids: dict[str, int] = json.loads(pidfile.read_text())
    _kill_all(pids)
    pidfile.unlink()


def _kill_all(pids: dict[str, int]) -> None:
    for name in ("kube-apiserver", "etcd"):
        if name in pids:
            _terminate(pids[name])


def _terminate(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    if child := _CHILDREN.pop(pid, None):
        child.wait()


def _alive(pid: int) -> bool:
    if child := _CHILDREN.get(pid):
        return child.poll() is None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def die_with_parent() -> None:
    """``preexec_fn`` for children that must not outlive us (Linux): SIGTERM when we die,
    even by SIGKILL, so a killed test run or benchmark leaves no orphans."""
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def free_port() -> int:
    """A port on 127.0.0.1 that is free now."""
    return _free_ports(1)[0]


def wait_for_port(port: int, timeout: float = 30.0) -> None:
    """Wait until something listens on 127.0.0.1:``port``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port}")


def _launcher(workdir: Path, detached: bool) -> Callable[[str, list[str]], int]:
    def launch(name: str, args: list[str]) -> int:
        log = (workdir / f"{name}.log").open("ab")
        proc = subprocess.Popen(
            args,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=None if detached else die_with_parent,
        )
        log.close()
        _CHILDREN[proc.pid] = proc
        return proc.pid

    return launch


def _etcd_args(bin_dir: Path, workdir: Path, port: int, peer: int) -> list[str]:
    return [
        str(bin_dir / "etcd"),
        f"--data-dir={workdir / 'etcd-data'}",
        f"--listen-client-urls=http://127.0.0.1:{port}",
        f"--advertise-client-urls=http://127.0.0.1:{port}",
        f"--listen-peer-urls=http://127.0.0.1:{peer}",
        f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
        f"--initial-cluster=default=http://127.0.0.1:{peer}",
        # Throwaway data: skip fsync (envtest does the same) and keep the database small.
        "--unsafe-no-fsync",
        "--quota-backend-bytes=8589934592",
        "--auto-compaction-retention=1",
        "--log-level=warn",
    ]


def _apiserver_args(bin_dir: Path, pki: dict[str, Path], etcd_port: int, port: int) -> list[str]:
    return [
        str(bin_dir / "kube-apiserver"),
        f"--etcd-servers=http://127.0.0.1:{etcd_port}",
        "--bind-address=127.0.0.1",
        # Without it the apiserver looks for a default route (controller-runtime#669).
        "--advertise-address=127.0.0.1",
        f"--secure-port={port}",
        f"--cert-dir={pki['dir']}",
        f"--tls-cert-file={pki['server.crt']}",
        f"--tls-private-key-file={pki['server.key']}",
        f"--client-ca-file={pki['ca.crt']}",
        "--authorization-mode=RBAC",
        f"--service-account-issuer=https://127.0.0.1:{port}",
        f"--service-account-key-file={pki['sa.pub']}",
        f"--service-account-signing-key-file={pki['sa.key']}",
        "--service-cluster-ip-range=10.0.0.0/24",
        # No controller-manager: nothing would create the default ServiceAccounts (envtest).
        "--disable-admission-plugins=ServiceAccount",
        "--endpoint-reconciler-type=none",
        # Tests and benchmarks create thousands of objects; lift the default flow limits (kwok).
        "--enable-priority-and-fairness=false",
        "--max-requests-inflight=0",
        "--max-mutating-requests-inflight=0",
        "--allow-privileged=true",
    ]


def admin_context(pki: Path) -> ssl.SSLContext:
    """TLS as the admin client (``system:masters``) of the control plane whose PKI is ``pki``."""
    context = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    context.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
    return context


def _wait_ready(plane: ControlPlane, pki: dict[str, Path], pids: dict[str, int]) -> None:
    context = admin_context(pki["dir"])
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    last = "no answer yet"
    while time.monotonic() < deadline:
        for name, pid in pids.items():
            if not _alive(pid):
                raise RuntimeError(f"{name} exited; see {plane.workdir / (name + '.log')}")
        try:
            with urllib.request.urlopen(f"{plane.server}/readyz", context=context, timeout=5) as r:
                if r.status == 200:
                    return
        except OSError as exc:
            last = str(exc)
        time.sleep(0.5)
    raise TimeoutError(f"kube-apiserver not ready after {START_TIMEOUT_SECONDS}s: {last}")


def etcd_port(workdir: Path) -> int:
    """The client port of the etcd started under ``workdir`` (for benchmarks that seed it)."""
    return _ports(workdir)[0]


def _ports(workdir: Path) -> list[int]:
    """Free ports, chosen once per workdir: a restarted etcd keeps the peer URL it stored."""
    saved = workdir / "ports.json"
    if saved.exists():
        ports: list[int] = json.loads(saved.read_text())
        return ports
    ports = _free_ports(3)
    saved.write_text(json.dumps(ports))
    return ports


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _write_kubeconfig(plane: ControlPlane, pki: dict[str, Path]) -> None:
    def b64(path: Path) -> str:
        return base64.b64encode(path.read_bytes()).decode()

    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "dli-local",
                "cluster": {
                    "server": plane.server,
                    "certificate-authority-data": b64(pki["ca.crt"]),
                },
            }
        ],
        "users": [
            {
                "name": "admin",
                "user": {
                    "client-certificate-data": b64(pki["admin.crt"]),
                    "client-key-data": b64(pki["admin.key"]),
                },
            }
        ],
        "contexts": [{"name": "dli-local", "context": {"cluster": "dli-local", "user": "admin"}}],
        "current-context": "dli-local",
    }
    plane.kubeconfig.write_text(yaml.safe_dump(config))
    plane.kubeconfig.chmod(0o600)


def _write_pki(folder: Path) -> dict[str, Path]:
    """A throwaway CA, a serving cert for 127.0.0.1, an admin client cert, SA keys."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    folder.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)

    def name(cn: str, org: str | None = None) -> x509.Name:
        attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
        if org:
            attrs.insert(0, x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
        return x509.Name(attrs)

    def save_key(key: ec.EllipticCurvePrivateKey, stem: str) -> None:
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        (folder / f"{stem}.key").write_bytes(pem)

    def issue(
        subject: x509.Name,
        key: ec.EllipticCurvePrivateKey,
        issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None,
        extensions: list[tuple[x509.ExtensionType, bool]],
    ) -> x509.Certificate:
        issuer_name, signing_key = issuer or (subject, key)
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=30))
        )
        for ext, critical in extensions:
            builder = builder.add_extension(ext, critical=critical)
        return builder.sign(signing_key, hashes.SHA256())

    def save_cert(cert: x509.Certificate, stem: str) -> None:
        (folder / f"{stem}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = issue(name("dli-local-ca"), ca_key, None, [(x509.BasicConstraints(True, None), True)])
    save_key(ca_key, "ca")
    save_cert(ca, "ca")
    leaf = [(x509.BasicConstraints(False, None), True)]
    server_key = ec.generate_private_key(ec.SECP256R1())
    sans = x509.SubjectAlternativeName(
        [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    )
    server_usage = x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH])
    save_key(server_key, "server")
    save_cert(
        issue(
            name("kube-apiserver"),
            server_key,
            (ca.subject, ca_key),
            [*leaf, (sans, False), (server_usage, False)],
        ),
        "server",
    )
    admin_key = ec.generate_private_key(ec.SECP256R1())
    client_usage = x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH])
    save_key(admin_key, "admin")
    save_cert(
        issue(
            name("admin", "system:masters"),
            admin_key,
            (ca.subject, ca_key),
            [*leaf, (client_usage, False)],
        ),
        "admin",
    )
    sa_key = ec.generate_private_key(ec.SECP256R1())
    save_key(sa_key, "sa")
    (folder / "sa.pub").write_bytes(
        sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    files = ["ca.crt", "ca.key", "server.crt", "server.key", "admin.crt", "admin.key"]
    paths = {f: folder / f for f in [*files, "sa.key", "sa.pub"]}
    paths["dir"] = folder
    return paths
