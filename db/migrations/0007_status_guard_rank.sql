-- The status guard of 0003 (calls_status_forward) ranks a status by its
-- position in '{queued,initiated,ringing,in-progress}' and gives the
-- terminal ones 4; array_position counts from 1, so in-progress ranked 4 as
-- well, and a terminal status without a SequenceNumber over an in-progress
-- one whose callback had a number was refused as a step backwards ("status
-- may not move from in-progress to completed"): the final status in
-- Twilio's answer to a hang up (POST /calls/{sid}/hangup), and a
-- reconciliation event for a call stuck in progress, which could then never
-- reach its final status. Terminal statuses rank 5, above every other. Same
-- function, same trigger, same rule; only the constant changes. A migration
-- of its own, so that databases that already ran 0003 and 0004 get it.
CREATE OR REPLACE FUNCTION calls_status_forward() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.status <> OLD.status
     AND (coalesce(array_position('{queued,initiated,ringing,in-progress}'::text[], NEW.status), 5),
          coalesce(NEW.sequence_number, -1))
       < (coalesce(array_position('{queued,initiated,ringing,in-progress}'::text[], OLD.status), 5),
          coalesce(OLD.sequence_number, -1)) THEN
    RAISE EXCEPTION 'call % status may not move from % to %',
      OLD.call_sid, OLD.status, NEW.status USING ERRCODE = 'check_violation';
  END IF;
  RETURN NEW;
END
$$;
