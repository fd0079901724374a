"""How the simulated KIS realtime feed behaves; every number the sources leave open is here."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from mocks.feed.protocol import MAX_RECORDS_PER_FRAME, MAX_SUBSCRIPTIONS

ApprovalPolicy = Literal["issued", "uuid"]


class FeedConfig(BaseModel):
    """The feed's settings, fixed for the life of the mock.

    - ``seed``: the market's seed; give the broker's to make REST quotes and frames agree.
    - ``ping_interval_s``: seconds between PINGPONG heartbeats on each connection. 100 s
      is the one (unconfirmed) figure for KIS; a client tuned to a shorter heartbeat
      would misjudge the real broker, so scenarios that want more heartbeats lower it.
    - ``max_subscriptions``: registrations per session, both tr_ids together (KIS: 41).
    - ``records_per_frame``: how many steps of one subscription one frame carries. With 1
      (the default) every step's record goes out at that step; with N, a subscription's
      records go out every N steps as one N-record frame (KIS's multi-record shape).
    - ``approval_keys``: which approval keys open a session. "issued": only keys the mock
      broker issued (``create_feed_app(approvals=...)`` gives its registry); "uuid": any
      UUID-shaped key, each key its own app (a feed running without a broker). None picks
      "issued" when a registry is given, else "uuid".
    - ``appkey_release_s``: how long a dropped session still holds its app key; a new
      session of that app key meanwhile gets OPSP8996. Clients report the real broker
      holding it from seconds to hours after a disconnect; 0 releases it at once.
    - ``max_message_chars``: the longest client message answered normally (a subscribe
      is about 200 characters); longer ones get an error ack (OPSP9005) and the connection
      stays. Beyond ``mocks.limits.MAX_WS_MESSAGE_BYTES`` (64 KiB, uvicorn's ``ws_max_size``)
      the connection is closed with 1009 before the feed reads the message.
    - ``max_backlog``: messages queued for one connection (a slow or stuck client, a long
      delay fault) before the feed gives up on it and closes it with 1013 (try again later).
    - ``signal_interval_s``: seconds between the signals channel's (``/ws``) rounds: a price
      message per subscribed ticker, then the signals drawn for it. 2 s, as the seed's
      mock broadcast; on the loop clock, so scenarios on virtual time run it too.
    - ``vcp_probability`` and ``closing_bet_probability``: the chance (0 to 1) that a
      subscribed ticker sends a VCP, or a closing-bet (종가베팅), signal in a round. 0.1
      each, as the seed's; 0 sends none (cue them from the control plane instead), 1 one
      every round. Drawn from ``seed``, so one seed sends the same signals in every run.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    seed: int = 0
    ping_interval_s: float = Field(default=100.0, gt=0)
    max_subscriptions: int = Field(default=MAX_SUBSCRIPTIONS, ge=1)
    records_per_frame: int = Field(default=1, ge=1, le=MAX_RECORDS_PER_FRAME)
    approval_keys: ApprovalPolicy | None = None
    appkey_release_s: float = Field(default=0.0, ge=0)
    max_message_chars: int = Field(default=4096, ge=256)
    max_backlog: int = Field(default=10_000, ge=10)
    # At least 10 ms: a shorter round only spins the loop (the market steps once a second).
    signal_interval_s: float = Field(default=2.0, ge=0.01)
    vcp_probability: float = Field(default=0.1, ge=0, le=1)
    closing_bet_probability: float = Field(default=0.1, ge=0, le=1)
