"""Gossip membership (SWIM with Lifeguard): who is in the cluster, alive, suspect, dead or left.

The node integrates through Memberlist (constructed with a GossipConfig, a NetTransport and a
Listener), its members()/stats(), and reply.members_reply/stats_reply for the text commands.
"""

from .config import GossipConfig, lan, local, memberlist_defaults
from .keyring import Keyring, KeyringError
from .memberlist import COUNTERS, Listener, Memberlist
from .reply import members_lines, members_reply, stats_reply
from .state import Member, NodeMeta, State, Status
from .transport import NetTransport, Transport

__all__ = [
    "COUNTERS",
    "GossipConfig",
    "Keyring",
    "KeyringError",
    "Listener",
    "Member",
    "Memberlist",
    "NetTransport",
    "NodeMeta",
    "State",
    "Status",
    "Transport",
    "lan",
    "local",
    "memberlist_defaults",
    "members_lines",
    "members_reply",
    "stats_reply",
]
