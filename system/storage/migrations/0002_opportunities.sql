-- Arbitrage opportunities the trading desk saw (system.storage.records.Opportunity). Not
-- signals: a cycle through currency pairs has no stock code, and the desk trades none of
-- it; each row is information, recorded once when its cycle turns profitable.
create table opportunities (
    id             bigserial primary key,
    seq            bigint not null unique,
    opportunity_id text not null,
    detector       text not null,
    cycle          text not null,
    net_rate       double precision not null,
    est_profit     double precision not null,
    detail         jsonb not null default '{}'::jsonb,
    at             double precision not null,
    recorded_at    timestamptz not null default now()
);
create index opportunities_cycle_at on opportunities (cycle, at);
