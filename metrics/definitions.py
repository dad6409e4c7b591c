"""Every metric Parley exposes: name, type, meaning and labels, in one place.

Metrics are built against a registry the caller passes in, so each process (and each
test) has its own. Labels are bounded: channel ids come from configuration, kinds and
outcomes from enums; never a customer's number or free text.
"""

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# Produce and apply latencies sit around a millisecond when healthy; the top buckets
# catch a broker or Redis that stalls up to the 10 s produce bound.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class IngestMetrics:
    """The webhook receiver's metrics."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.webhook_requests = Counter(
            "parley_webhook_requests_total",
            "Webhook calls answered, by HTTP method and outcome (the error code, or ok).",
            ["method", "outcome"],
            registry=registry,
        )
        self.webhook_seconds = Histogram(
            "parley_webhook_request_seconds",
            "Time to answer a webhook call, Kafka acknowledgement included.",
            ["method"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        # The success path's children, resolved once: labels() on every call was most of
        # a call's metrics cost (docs/profiles/receiver.md).
        self.posts_ok = self.webhook_requests.labels("POST", "ok")
        self.post_seconds = self.webhook_seconds.labels("POST")
        self.signature_failures = Counter(
            "parley_webhook_signature_failures_total",
            "POSTs refused for their X-Hub-Signature-256: missing, malformed or mismatch.",
            ["reason"],
            registry=registry,
        )
        self.produce_seconds = Histogram(
            "parley_produce_seconds",
            "Time from handing a call's events to Kafka until all were acknowledged.",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.events_produced = Counter(
            "parley_events_produced_total",
            "Conversation events acknowledged by Kafka, by event kind.",
            ["kind"],
            registry=registry,
        )
        self.dead_lettered = Counter(
            "parley_events_dead_lettered_total",
            "Events sent to the dead-letter topic instead, by reason.",
            ["reason"],
            registry=registry,
        )
        self.changes_ignored = Counter(
            "parley_webhook_changes_ignored_total",
            "Webhook changes that carry no conversation event (field is not messages).",
            ["field"],
            registry=registry,
        )
        self.number_updates = Counter(
            "parley_number_updates_total",
            "Meta's webhooks on a number's display name review (name) and quality (quality), "
            "by outcome (applied; unknown_number: no channel's standing names that display "
            "phone number yet).",
            ["field", "outcome"],
            registry=registry,
        )
        self.message_statuses = Counter(
            "parley_message_statuses_total",
            "Delivery statuses of our messages reported by Meta, by status and error code "
            "(empty when none).",
            ["status", "error_code"],
            registry=registry,
        )
        self.value_errors = Counter(
            "parley_webhook_value_errors_total",
            "Errors Meta reported at value level in webhooks, by error code.",
            ["code"],
            registry=registry,
        )


class EngineMetrics:
    """The engine's metrics: applying events, the sweeper, queue sizes."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.events_applied = Counter(
            "parley_events_applied_total",
            "Events the engine finished with, by kind and outcome "
            "(applied, duplicate, rejected, ignored).",
            ["kind", "outcome"],
            registry=registry,
        )
        self.apply_seconds = Histogram(
            "parley_apply_batch_seconds",
            "Time to apply one polled batch to Redis, from decode to Redis's answer.",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.batch_events = Histogram(
            "parley_apply_batch_events",
            "Events in one applied batch.",
            buckets=(1, 10, 50, 100, 250, 500, 1000, 2500, 5000),
            registry=registry,
        )
        self.consumer_lag = Gauge(
            "parley_consumer_lag_events",
            "Events on a partition not yet applied (high watermark minus position).",
            ["topic", "partition"],
            registry=registry,
        )
        self.commits = Counter(
            "parley_offset_commits_total",
            "Offset commits to Kafka, by outcome.",
            ["outcome"],
            registry=registry,
        )
        self.redis_retries = Counter(
            "parley_redis_retries_total",
            "Redis calls retried after a connection or timeout error.",
            ["operation"],
            registry=registry,
        )
        self.queue_size = Gauge(
            "parley_queue_conversations",
            "Conversations in a channel's queue, read from Redis at scrape time.",
            ["channel", "queue"],
            registry=registry,
        )
        self.assignments = Counter(
            "parley_assignments_total",
            "Conversations assigned to an agent, by channel and mode (auto, manual).",
            ["channel", "mode"],
            registry=registry,
        )
        self.resolutions = Counter(
            "parley_resolutions_total",
            "Conversations resolved, by channel and by whom (agent, auto).",
            ["channel", "by"],
            registry=registry,
        )
        self.first_response_seconds = Histogram(
            "parley_first_response_seconds",
            "From the start of a conversation cycle to its first agent reply.",
            ["channel"],
            # From a quick answer to the next working day.
            buckets=(15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 14400, 28800, 86400, 172800),
            registry=registry,
        )
        self.auto_resolved = Counter(
            "parley_auto_resolved_total",
            "Conversations the sweeper resolved, by channel and the queue they left.",
            ["channel", "queue"],
            registry=registry,
        )
        self.snooze_wakeups = Counter(
            "parley_snooze_wakeups_total",
            "Snoozed conversations woken, by channel and how (on_time: the timer; early: "
            "the customer wrote).",
            ["channel", "how"],
            registry=registry,
        )
        self.sla_events = Counter(
            "parley_sla_events_total",
            "SLA targets that came within their warning lead (event=warning) or were missed "
            "(event=breach), by channel and target (first_response, next_response, "
            "resolution).",
            ["channel", "target", "event"],
            registry=registry,
        )
        self.marked_offline = Counter(
            "parley_users_marked_offline_total",
            "Users set offline by Parley: online or away with no live stream for "
            "PARLEY_OFFLINE_AFTER_S.",
            registry=registry,
        )
        self.routed = Counter(
            "parley_routed_total",
            "Conversations the router handed to an agent, by channel.",
            ["channel"],
            registry=registry,
        )
        self.released = Counter(
            "parley_released_total",
            "Conversations taken from their assignee and put back in New, by channel and "
            "why (offline, returned: the customer wrote to an offline agent's Pending one, "
            "unanswered: not answered within the channel's limit).",
            ["channel", "why"],
            registry=registry,
        )
        self.number_problems = Gauge(
            "parley_number_problem",
            "1 while a channel's number has the problem (name_declined: Meta declined its "
            "display name, no sends until a new one is approved; quality_red: its quality "
            "rating is RED), else 0; read from Redis at scrape time.",
            ["channel", "problem"],
            registry=registry,
        )
        self.routing_waiting = Gauge(
            "parley_routing_waiting",
            "Conversations waiting in a routing channel's pool after the router's last pass "
            "(nobody with room), by channel.",
            ["channel"],
            registry=registry,
        )
        self.routing_seconds = Histogram(
            "parley_routing_pass_seconds",
            "One router pass over the channels it was woken for, lease to lease.",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=registry,
        )
        self.sweeps = Counter(
            "parley_sweeps_total",
            "Sweeper passes, by outcome (ok, error).",
            ["outcome"],
            registry=registry,
        )
        self.outbound = Counter(
            "parley_outbound_messages_total",
            "Replies the sender finished, by channel and outcome (accepted by WhatsApp, "
            "failed, unconfirmed after an interrupted send).",
            ["channel", "outcome"],
            registry=registry,
        )
        self.outbound_retries = Counter(
            "parley_outbound_retries_total",
            "Send attempts retried, by channel and reason (Meta error code, http_5xx, timeout).",
            ["channel", "reason"],
            registry=registry,
        )
        self.outbound_seconds = Histogram(
            "parley_outbound_send_seconds",
            "One Graph API send call, from request to answer.",
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=registry,
        )
        self.media_fetched = Counter(
            "parley_media_fetched_total",
            "Customers' files the fetcher finished, by channel and outcome (stored, failed).",
            ["channel", "outcome"],
            registry=registry,
        )
        self.media_fetch_seconds = Histogram(
            "parley_media_fetch_seconds",
            "One customer file, from asking the Graph API for its link to stored.",
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=registry,
        )
        self.media_in_hand = Gauge(
            "parley_media_fetches_in_hand",
            "Customers' files this engine has taken to fetch and not finished (bounded).",
            registry=registry,
        )
        self.last_sweep = Gauge(
            "parley_sweeper_last_success_timestamp_seconds",
            "When the sweeper last finished a pass without error (Unix time).",
            registry=registry,
        )
