"""Prometheus metrics of the agent, in a registry owned by the server (no global state)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class AgentMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.sessions_active = Gauge("mavid_sessions_active", "Sessions connected now", registry=r)
        self.sessions_total = Counter("mavid_sessions", "Sessions started", registry=r)
        self.turns_total = Counter("mavid_turns", "User turns answered", ["source"], registry=r)
        self.barge_ins_total = Counter("mavid_barge_ins", "Answers cut by the user", registry=r)
        self.errors_total = Counter("mavid_errors", "Sessions ended by an error", registry=r)
        self.stalls_total = Counter(
            "mavid_stalls", "Gaps > 100 ms between clips inside an answer", registry=r
        )
        self.clip_seconds = Histogram(
            "mavid_clip_generation_seconds",
            "Wall time to make one clip",
            buckets=(0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.5, 2.0, 4.0),
            registry=r,
        )
        self.creator_rtf = Histogram(
            "mavid_creator_rtf",
            "Seconds of media per second of generation, per clip",
            buckets=(0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 3.0, 5.0, 10.0),
            registry=r,
        )
        self.response_latency = Histogram(
            "mavid_response_latency_seconds",
            "End of user speech (or typed text) to the first answer audio on the timeline",
            buckets=(0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0, 1.5, 2.0, 3.0, 5.0),
            registry=r,
        )
