-- Squall's initial schema: what the trading service writes down as it runs.
--
-- Every table has the same spine:
--   id           the row's own key;
--   seq          the system's write sequence number (one counter across all tables), so
--                after an outage the buffered writes can be replayed and checked for
--                order, and a replay is idempotent: insert ... on conflict (seq) do nothing;
--   at           the system's own event time (loop seconds) when it happened;
--   recorded_at  when the row reached the database (later than `at` after an outage).
-- Prices and volumes are integers (KRW, shares), as the broker reports them.

create table quote_snapshots (
    id          bigserial primary key,
    seq         bigint not null unique,
    code        char(6) not null,
    price       bigint not null,
    volume      bigint not null,
    at          double precision not null,
    recorded_at timestamptz not null default now()
);
create index quote_snapshots_code_at on quote_snapshots (code, at);

create table signals (
    id          bigserial primary key,
    seq         bigint not null unique,
    code        char(6) not null,
    kind        text not null,
    detail      jsonb not null default '{}'::jsonb,
    at          double precision not null,
    recorded_at timestamptz not null default now()
);
create index signals_code_at on signals (code, at);

create table orders (
    id              bigserial primary key,
    seq             bigint not null unique,
    client_order_id text not null unique,
    code            char(6) not null,
    side            text not null,
    quantity        bigint not null,
    price           bigint,          -- null: a market order
    state           text not null,
    broker_order_id text,            -- null until the broker has acknowledged the order
    at              double precision not null,
    recorded_at     timestamptz not null default now()
);

create table halts (
    id          bigserial primary key,
    seq         bigint not null unique,
    reason      text not null,
    released    boolean not null default false,
    at          double precision not null,
    recorded_at timestamptz not null default now()
);

create table audit_events (
    id          bigserial primary key,
    seq         bigint not null unique,
    kind        text not null,
    detail      jsonb not null default '{}'::jsonb,
    at          double precision not null,
    recorded_at timestamptz not null default now()
);
