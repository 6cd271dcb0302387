"""TLS: mutual TLS between nodes; a client without a valid certificate is refused."""
import logging
import ssl

import trustme

from openraft_fast._core.messages import VoteRequest
from openraft_fast._core.types import LeaderId, Vote
from openraft_fast.errors import NetworkError, Unreachable
from openraft_fast.network.tcp import TcpNetworkFactory
from openraft_fast.testing.node_runner import tls_contexts
from tcp_support import WAIT, TcpCluster
from tls_support import write_tls_dir

VOTE = Vote(LeaderId(1, 1), False)


def test_mutual_tls_cluster_and_refused_clients(run, tmp_path, caplog):
    async def body():
        caplog.set_level(logging.WARNING, logger="openraft_fast.network.tcp")
        ca = trustme.CA()
        server_ctx, client_ctx = tls_contexts(str(write_tls_dir(tmp_path / "good", ca)))
        async with TcpCluster(server_ssl=server_ctx, client_ssl=client_ctx) as c:
            lead = await c.start([1, 2, 3])
            for i in range(20):
                r = await c.write(lead, f"k{i}", i)
            for i in (1, 2, 3):
                await c.rafts[i].wait(WAIT).applied_index(r.log_id.index)
                assert c.rafts[i]._core.sm.data["k19"] == 19
            conn = next(iter(c.rafts[lead]._core.clients.values()))._conns[1]
            assert conn.transport.get_extra_info("ssl_object") is not None

            # Clients the servers must refuse: no certificate, a certificate from another CA,
            # no TLS at all.
            no_cert = ssl.create_default_context(cafile=str(tmp_path / "good" / "ca.pem"))
            _, other_ca = tls_contexts(str(write_tls_dir(tmp_path / "other")))
            untrusting = ssl.create_default_context(cafile=str(tmp_path / "other" / "ca.pem"))
            ca.issue_cert("127.0.0.1").configure_cert(untrusting)     # valid cert, but does not trust the server
            for name, ctx in (("no certificate", no_cert), ("other CA", other_ca), ("plain TCP", None),
                              ("server not trusted", untrusting)):
                f = TcpNetworkFactory(9, c.config, ssl=ctx)
                net = f.new_client(lead, c.node(lead))
                try:
                    await net.vote(VoteRequest(VOTE))
                    raise AssertionError(f"{name}: the request went through")
                except (Unreachable, NetworkError):
                    pass
                finally:
                    f.close()
                r = await c.write(lead, name, 1)       # the node keeps serving its peers
                assert r.log_id.index > 0
    run(body())
