"""DDS channels on cyclonedds: one participant per (domain, interface), typed publishers/subscribers.

`DdsContext(domain_id, interface)` pins the network interface through a CycloneDDS XML config (as
unitree_sdk2py's ChannelFactoryInitialize does), so tests on `lo` with a random domain id never
reach a real robot. Subscribers keep only the newest sample (KEEP_LAST 1): the control loop wants
the latest lowstate, not a queue of old ones, and deserialising one sample per cycle is cheap.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any, Generic, Optional, TypeVar

from cyclonedds.core import Policy, Qos
from cyclonedds.domain import Domain, DomainParticipant
from cyclonedds.internal import InvalidSample
from cyclonedds.pub import DataWriter
from cyclonedds.sub import DataReader
from cyclonedds.topic import Topic

T = TypeVar("T")

_LOCK = threading.Lock()
_DOMAINS: dict[int, tuple[Optional[str], Domain]] = {}


class DdsError(RuntimeError):
    pass


def cyclonedds_xml(interface: Optional[str]) -> str:
    """CycloneDDS config: pin `interface` (e.g. eth0, enp3s0, lo) or let cyclonedds choose."""
    if interface:
        nic = f'<NetworkInterface name="{interface}" priority="default" multicast="default"/>'
        peers = (
            '<Discovery><Peers><Peer address="127.0.0.1"/></Peers></Discovery>' if interface == "lo" else ""
        )
        return (
            '<CycloneDDS><Domain id="any"><General><Interfaces>'
            f"{nic}</Interfaces></General>{peers}</Domain></CycloneDDS>"
        )
    return (
        '<CycloneDDS><Domain id="any"><General><Interfaces>'
        '<NetworkInterface autodetermine="true" priority="default" multicast="default"/>'
        "</Interfaces></General></Domain></CycloneDDS>"
    )


def _domain(domain_id: int, interface: Optional[str]) -> Domain:
    # A domain's config is fixed once created in a process: refuse a conflicting second request
    # instead of silently talking on the wrong interface.
    with _LOCK:
        if domain_id in _DOMAINS:
            iface, dom = _DOMAINS[domain_id]
            if iface != interface:
                raise DdsError(
                    f"DDS domain {domain_id} is already open on interface {iface!r} in this process; "
                    f"cannot reopen it on {interface!r} (deploy.robot.dds.interface)"
                )
            return dom
        try:
            dom = Domain(domain_id, cyclonedds_xml(interface))
        except Exception as e:
            raise DdsError(
                f"cannot open DDS domain {domain_id} on interface {interface!r}: {e}. "
                "Check deploy.robot.dds.interface names a real NIC (`ip link`), e.g. eth0 / enp3s0, or lo for tests"
            ) from e
        _DOMAINS[domain_id] = (interface, dom)
        return dom


class DdsContext:
    """A participant on `domain_id`, bound to `interface` (None = cyclonedds chooses)."""

    def __init__(self, domain_id: int = 0, interface: Optional[str] = None):
        self.domain_id = int(domain_id)
        self.interface = interface or None
        self._domain = _domain(self.domain_id, self.interface)
        self.participant = DomainParticipant(self.domain_id)
        self._topics: dict[str, Topic] = {}

    def topic(self, name: str, data_type: type) -> Topic:
        if name not in self._topics:
            self._topics[name] = Topic(self.participant, name, data_type)
        return self._topics[name]

    def publisher(self, name: str, data_type: type[T]) -> Publisher[T]:
        return Publisher(self, name, data_type)

    def subscriber(self, name: str, data_type: type[T], depth: int = 1) -> Subscriber[T]:
        return Subscriber(self, name, data_type, depth)


class Publisher(Generic[T]):
    def __init__(self, ctx: DdsContext, name: str, data_type: type[T]):
        self.name = name
        self.writer = DataWriter(ctx.participant, ctx.topic(name, data_type))

    def write(self, sample: T, timestamp_ns: Optional[int] = None) -> bool:
        """Publish; returns False (never raises) when DDS refuses, so a loop can count failures.

        timestamp_ns: the sample's DDS source timestamp (ns since the epoch; None = the write time)."""
        try:
            self.writer.write(sample, timestamp_ns)
            return True
        except Exception:
            return False


@dataclass
class Received(Generic[T]):
    sample: Any
    t_rx: float  # time.monotonic() when taken


class Subscriber(Generic[T]):
    """Newest-sample reader: `latest()` returns the newest sample received since the last call.

    depth > 1 keeps that many unread samples for `take_all()` (the fakes use it to see every
    command, catch-up bursts included, with the writer's timestamps)."""

    def __init__(self, ctx: DdsContext, name: str, data_type: type[T], depth: int = 1):
        self.name = name
        self.depth = int(depth)
        qos = Qos(Policy.History.KeepLast(self.depth), Policy.Reliability.BestEffort)
        self.reader = DataReader(ctx.participant, ctx.topic(name, data_type), qos=qos)
        self.last: Optional[Received[T]] = None

    def take_all(self) -> list[tuple[T, int]]:
        """Every pending sample, oldest first, with its source timestamp (ns, the writer's clock)."""
        out = []
        for s in self.reader.take(N=self.depth):
            if isinstance(s, InvalidSample):
                continue
            out.append((s, int(s.sample_info.source_timestamp)))
        return out

    def latest(self) -> Optional[T]:
        """Take the newest pending sample (or None when nothing new arrived)."""
        samples = [s for s in self.reader.take(N=1) if not isinstance(s, InvalidSample)]
        if not samples:
            return None  # nothing new, or only a lifecycle notice (a writer went away)
        self.last = Received(samples[-1], time.monotonic())
        return samples[-1]

    def wait(self, timeout_s: float, poll_s: float = 0.002) -> Optional[T]:
        """Block up to `timeout_s` for a new sample."""
        deadline = time.monotonic() + timeout_s
        while True:
            s = self.latest()
            if s is not None:
                return s
            if time.monotonic() >= deadline:
                return None
            time.sleep(poll_s)
