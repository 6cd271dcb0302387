"""Certificates for the TLS tests (trustme): a directory with ca.pem and node.pem, the layout
node_runner's --tls reads."""
import pathlib

import trustme


def write_tls_dir(path: pathlib.Path, ca: trustme.CA = None) -> pathlib.Path:
    ca = ca or trustme.CA()
    path.mkdir(parents=True, exist_ok=True)
    leaf = ca.issue_cert("127.0.0.1", "localhost")
    ca.cert_pem.write_to_path(str(path / "ca.pem"))
    leaf.private_key_and_cert_chain_pem.write_to_path(str(path / "node.pem"))
    return path
