-- What each cluster learned about its capacity across decisions (services/src/estimate/capacity.rs): one
-- point per scale, the median capacity of the samples that spoke for it, their scatter around it, how many
-- there were and when the newest was taken. The worker replaces a cluster's points after each decision it
-- plans; the estimator keeps at most 16 and forgets those older than 7 days, so the table stays small. A
-- deleted cluster's memory goes with it.
create table capacity_memory (
    cluster_id  bigint not null references clusters (id) on delete cascade,
    scale       integer not null check (scale >= 1),
    capacity    double precision not null check (capacity > 0),
    spread      double precision not null check (spread >= 0),
    samples     integer not null check (samples >= 1),
    observed_at timestamptz not null,
    primary key (cluster_id, scale)
);
