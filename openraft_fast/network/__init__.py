"""Networks: the contracts (NetworkFactory, Network) and the networks we ship: the in-process
LocalRouter and the TCP transport (`openraft_fast.network.tcp`)."""
from openraft_fast.network.base import Network, NetworkFactory
from openraft_fast.network.local import LocalNetwork, LocalNetworkFactory, LocalRouter
from openraft_fast.network.tcp import TcpNetworkFactory, TcpServer, serve_tcp

__all__ = ["LocalNetwork", "LocalNetworkFactory", "LocalRouter", "Network", "NetworkFactory", "TcpNetworkFactory",
           "TcpServer", "serve_tcp"]
