-- The autoscaler's schema. The job queue's tables live in the `apalis` schema, created by apalis-postgres'
-- own migrations (tracked in apalis._sqlx_migrations, so the two migrators never see each other's versions).

-- Subscribed clusters. The spec is the validated, defaults-filled document the API accepted; the columns
-- beside it are the parts that loops filter on.
create table clusters (
    id          bigint generated always as identity primary key,
    name        text not null unique,
    kind        text not null check (kind in ('engine', 'flink', 'generic')),
    spec        jsonb not null,
    paused      boolean not null default false,
    created_at  timestamptz not null default now(),
    updated_at  timestamptz not null default now()
);

-- Metric samples: one row per cluster per scrape. A metric that was missing or stale is NULL, never zero,
-- so rules can tell "no data" from "idle". Pruned by the retention setting.
create table metric_samples (
    cluster_id   bigint not null references clusters (id) on delete cascade,
    sampled_at   timestamptz not null,
    cpu_load     double precision,
    lag_records  double precision,
    lag_seconds  double precision,
    records_in   double precision,
    records_out  double precision,
    scale        double precision,
    primary key (cluster_id, sampled_at)
);
create index metric_samples_sampled_at on metric_samples (sampled_at);

-- Decisions: the audit trail. It outlives the cluster (cluster_id is cleared when a cluster is deleted), so
-- the name is kept on the row.
create table decisions (
    id            bigint generated always as identity primary key,
    cluster_id    bigint references clusters (id) on delete set null,
    cluster_name  text not null,
    status        text not null check (status in (
                      'pending', 'running', 'vetoed', 'skipped', 'committed', 'pr_open', 'merged',
                      'rejected', 'syncing', 'synced', 'applied', 'failed')),
    rule          text not null,
    inputs        jsonb not null default '{}',
    estimate      jsonb,
    from_scale    integer,
    to_scale      integer,
    write_back    jsonb,
    sync          jsonb,
    reason        text,
    created_at    timestamptz not null default now(),
    updated_at    timestamptz not null default now(),
    finished_at   timestamptz
);
create index decisions_cluster_newest on decisions (cluster_id, id desc);
-- One decision in flight per cluster, guaranteed by the database rather than by a check-then-insert.
create unique index decisions_one_in_flight on decisions (cluster_id)
    where status in ('pending', 'running', 'committed', 'pr_open', 'merged', 'syncing');

-- Webhook deliveries already handled, so a redelivery is acknowledged without acting twice.
create table webhook_deliveries (
    source       text not null check (source in ('github', 'argocd', 'engine')),
    delivery_id  text not null,
    event        text not null,
    decision_id  bigint references decisions (id) on delete set null,
    received_at  timestamptz not null default now(),
    primary key (source, delivery_id)
);

-- Engine instances that announced themselves, so the autoscaler knows when new capacity is really up.
create table engine_workers (
    cluster_id         bigint not null references clusters (id) on delete cascade,
    instance_id        text not null,
    registered_at      timestamptz not null default now(),
    last_heartbeat_at  timestamptz not null default now(),
    primary key (cluster_id, instance_id)
);
