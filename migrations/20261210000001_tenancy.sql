-- Teams. A cluster belongs to the team that subscribed it; clusters subscribed before teams existed belong
-- to the default team (the one plain AUTOSCALER_API_TOKENS tokens are in). A decision keeps its cluster's
-- team, so the history stays readable by that team only after the cluster is gone.
alter table clusters add column team text not null default 'default';
create index clusters_team_name on clusters (team, name);
alter table decisions add column team text not null default 'default';
update decisions d set team = c.team from clusters c where c.id = d.cluster_id;

-- Every change made through the API: who (the token's team and name, never the token), when, what, and
-- the spec before and after with anything secret-looking redacted.
create table audit_log (
    id          bigint generated always as identity primary key,
    at          timestamptz not null default now(),
    team        text not null,
    actor_team  text not null,
    token_name  text not null,
    action      text not null check (action in ('subscribe', 'replace', 'pause', 'resume', 'delete')),
    cluster     text not null,
    before      jsonb,
    after       jsonb
);
create index audit_log_team_newest on audit_log (team, id desc);
