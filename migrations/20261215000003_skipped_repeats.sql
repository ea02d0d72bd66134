-- Repeated identical skipped decisions collapse into one row: a rule that keeps firing while the checked
-- scale equals the current one would otherwise write a row per evaluation. The newest row stands for the
-- run: `repeats` is how many identical skips it counts (itself included), `first_at` when the first of
-- them was made.
alter table decisions add column repeats integer not null default 1 check (repeats >= 1);
alter table decisions add column first_at timestamptz;
