"""Scale-out on Redis: nodes of one hub cluster, which node owns which room, and the routing of
browsers to a room's owner (issue #13). Optional: ``make run`` and a plain ``unionhub serve``
never import it; ``unionhub serve --redis URL`` does."""

from .node import ClusterConfig, ClusterNode

__all__ = ["ClusterConfig", "ClusterNode"]
