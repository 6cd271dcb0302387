"""Networks: the contracts (NetworkFactory, Network) and the networks we ship."""
from openraft_fast.network.base import Network, NetworkFactory
from openraft_fast.network.local import LocalNetwork, LocalNetworkFactory, LocalRouter

__all__ = ["LocalNetwork", "LocalNetworkFactory", "LocalRouter", "Network", "NetworkFactory"]
