-- The case list holds the columns its readers need and no longer the write model's state.
-- The fold the projection computes each row from is kept apart, private to the projection.
CREATE TABLE case_list_folds (
    stream_id  text PRIMARY KEY,
    state      jsonb NOT NULL            -- the folded case (EscalationState), for the next batch only
);
INSERT INTO case_list_folds (stream_id, state) SELECT stream_id, state FROM case_list;

ALTER TABLE case_list
    ADD COLUMN at_risk        boolean NOT NULL DEFAULT false,  -- the next deadline's warning is recorded
    ADD COLUMN policy_label   text,
    ADD COLUMN policy_hash    text;
UPDATE case_list SET
    at_risk = coalesce((state -> 'clocks' -> next_deadline_kind ->> 'warned')::boolean, false)
              AND NOT coalesce((state -> 'clocks' -> next_deadline_kind ->> 'repeat')::boolean, false),
    policy_label = state ->> 'policy_label',
    policy_hash = state ->> 'policy_hash';
ALTER TABLE case_list ALTER COLUMN policy_label SET NOT NULL, ALTER COLUMN policy_hash SET NOT NULL;
ALTER TABLE case_list DROP COLUMN state;

-- A projection the projector stopped at an event whose stored bytes no longer parse (/readyz reports it).
CREATE TABLE projection_faults (
    name      text PRIMARY KEY,
    position  bigint NOT NULL,
    error     text NOT NULL,
    at        timestamptz NOT NULL DEFAULT now()
);
