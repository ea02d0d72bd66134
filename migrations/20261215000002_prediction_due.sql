-- The predictive rule (policy.predictive): a decision whose inputs record a seasonal prediction waits for
-- its check until the time it predicted has passed. The manager then compares the prediction with what
-- was observed, appends the verdict as a 'prediction_check' step and clears this column, so the index
-- holds only the predictions still waiting.
alter table decisions add column prediction_due timestamptz;
create index decisions_prediction_due on decisions (prediction_due) where prediction_due is not null;
